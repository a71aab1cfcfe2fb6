"""Estimators on a two-layer latent, q(z1|x) q(z2|z1) and p(z2) p(z1|z2), against the exact gradients by
enumerating all 16 values of (z1, z2) of 2 binary units each. The encoder side is the encoder and the inference
conditional q(z2|z1); the decoder side the decoder, the generative conditional p(z1|z2) and the learned p(z2)."""

import math
import re

import numpy as np
import pytest
import torch

from tests.toys import X, assert_unbiased, discrepancy, tiny_vae
from vaelab.build import check_estimator
from vaelab.errors import ConfigError
from vaelab.hierarchical import Hierarchical
from vaelab.latents import Binary
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad
from vaelab.objectives import ELBO, IWAE, VIMCO, DisARM, Estimate, GumbelSoftmax, Reinforce, VarianceLoss
from vaelab.objectives.baselines import LeaveOneOut

N = 2000


def two_layer_vae(hidden=(3,), kinds=("binary", "binary")):
    torch.manual_seed(1)
    return tiny_vae(Hierarchical([2, 2], list(kinds), hidden=list(hidden), classes=2, learn_prior=True))


def side(vae, part):
    """Every parameter trained by the encoder's or the decoder's signal."""
    nets = {"encoder": (vae.encoder, vae.latent.inference), "decoder": (vae.decoder, vae.latent.generative, vae.latent.layers)}
    return [p for net in nets[part] for p in net.parameters()]


def draws(objective, vae, S):
    """N independent gradients of objective(vae, X, S).loss, {side: [N, P_side]}, both sides from each draw."""
    encoder, decoder = side(vae, "encoder"), side(vae, "decoder")
    rows = torch.stack([flat_grad(objective(vae, X, S).loss, encoder + decoder) for _ in range(N)])
    size = sum(p.numel() for p in encoder)
    return {"encoder": rows[:, :size], "decoder": rows[:, size:]}


def assert_matches(objective, vae, S, value):
    """The mean estimate equals the exact gradient of `value` on both sides, within 5 standard errors."""
    found, truth = draws(objective, vae, S), flat_grad(value, side(vae, "encoder") + side(vae, "decoder"))
    assert_unbiased(found["encoder"], truth[: found["encoder"].shape[1]])
    assert_unbiased(found["decoder"], truth[found["encoder"].shape[1]:])


@pytest.fixture
def vae():
    return two_layer_vae()


def test_the_sides_split_every_parameter_and_the_elbo_reaches_both_conditionals(vae):
    assert len(side(vae, "encoder")) + len(side(vae, "decoder")) == len(list(vae.parameters()))
    for conditionals in (vae.latent.inference, vae.latent.generative):
        assert flat_grad(exact.elbo(vae, X).mean(), list(conditionals.parameters())).abs().max() > 1e-3


@pytest.mark.parametrize("objective,S,hidden", [(Reinforce("none"), 1, (3,)), (Reinforce("loo"), 4, (3,)),
                                                (Reinforce("loo"), 4, ()), (VarianceLoss("elbo", 0.5), 3, (3,))],
                         ids=["reinforce", "reinforce-loo", "reinforce-loo-linear", "vargrad"])
def test_score_function_estimators_are_unbiased_for_the_two_layer_elbo_gradient(objective, S, hidden):
    vae = two_layer_vae(hidden)
    assert_matches(objective, vae, S, -exact.elbo(vae, X).mean())


def test_variance_loss_is_unbiased_for_the_gradient_of_the_two_layer_variance(vae):
    assert_matches(VarianceLoss("variance"), vae, 3, exact.variance(vae, X).mean())


def test_vimco_is_unbiased_for_the_two_layer_importance_weighted_bound(vae):
    assert_matches(VIMCO(), vae, 3, -exact.iwae(vae, X, 3).mean())


def first_layer_only(vae, x, S):
    """REINFORCE-LOO scoring log q(z1|x) alone instead of log q(z1|x) + log q(z2|z1)."""
    q = vae.posterior(x)
    z = q.sample((S,))
    f = vae.log_weight(x, z, q).detach()
    signal, _, _ = LeaveOneOut()(f, x)
    score = q.layers(z)[0].log_prob(vae.latent.split(z)[0])
    return Estimate(loss=-(signal * score).mean(), elbo=f.mean(0))


def test_the_check_sees_a_layer_left_out_of_the_score():
    vae = two_layer_vae()
    truth = flat_grad(-exact.elbo(vae, X).mean(), side(vae, "encoder"))
    assert discrepancy(draws(first_layer_only, vae, 4)["encoder"], truth) > 10


def test_a_mix_of_categorical_and_binary_layers_trains_by_vargrad_without_bias():
    vae = two_layer_vae(kinds=("discrete", "binary"))
    assert_matches(VarianceLoss("elbo", 0.5), vae, 3, -exact.elbo(vae, X).mean())


@pytest.mark.parametrize("name,objective,S,cause", [
    ("disarm", DisARM(), 8, "L=2 stochastic layers are not supported"),
    ("gumbel", GumbelSoftmax(analytic_kl=True), 1, "loss.analytic_kl=true needs KL(q || p) in closed form"),
    ("elbo", ELBO(analytic_kl=True), 1, "loss.analytic_kl=true needs KL(q || p) in closed form")])
def test_estimators_without_a_multi_layer_form_are_refused_in_one_line(name, objective, S, cause):
    kind = "continuous" if name == "elbo" else "binary"
    with pytest.raises(ConfigError, match=re.escape(cause)) as refusal:
        check_estimator(name, objective, kind, S, depth=2)
    assert "\n" not in str(refusal.value)
    assert "loss=vargrad" in str(refusal.value)  # names the estimators that can
    check_estimator(name, objective, kind, S, depth=1)  # one layer: accepted as before


def logit_relaxed_bernoulli_log_density(logits, tau, y):
    """log tau + log sigma'(tau y - l): y = (l + L) / tau with L ~ Logistic(0, 1), summed over the variables."""
    u = tau * y - logits
    return (math.log(tau) - u - 2 * torch.nn.functional.softplus(-u)).sum(-1)


def test_gumbel_relaxes_each_layer_given_the_relaxed_layer_below(vae):
    """The relaxed posterior's log-density is log q_tau(y1|x) + log q_tau(y2|sigmoid(y1)), each layer's written out,
    and its first layer rounds to exact draws of q(z1|x) (Gumbel-max)."""
    tau, n = 0.5, 20000
    with torch.no_grad():
        relaxed = vae.latent.relaxed(vae.posterior(X), torch.tensor(tau, dtype=torch.float64))
        y = relaxed.base_dist.sample((n,))
        y1, y2 = vae.latent.split(y)
        logits1 = vae.encoder(X)
        logits2 = vae.latent.inference[0](torch.sigmoid(y1))
        expected = logit_relaxed_bernoulli_log_density(logits1, tau, y1) + logit_relaxed_bernoulli_log_density(logits2, tau, y2)
        torch.testing.assert_close(relaxed.base_dist.log_prob(y), expected)
        z1 = vae.latent.split(vae.latent.hard(relaxed.transforms[0](y)))[0]
        assert discrepancy(z1, torch.sigmoid(logits1)) < 5
    torch.testing.assert_close(relaxed.transforms[0](y), torch.sigmoid(y))   # both layers binary: z = sigmoid(y)


def test_gumbel_through_two_layers_is_biased_as_documented(vae):
    """With every layer relaxed and the relaxed densities in place of the discrete ones, the mean gradient is not the
    ELBO's (docs/estimators.md), while one relaxed layer of a depth-1 chain is the single-layer estimator draw for draw."""
    found = draws(GumbelSoftmax(1.0, 1.0, 0.0), vae, 1)
    truth = flat_grad(-exact.elbo(vae, X).mean(), side(vae, "encoder") + side(vae, "decoder"))
    assert discrepancy(found["encoder"], truth[: found["encoder"].shape[1]]) > 8   # an unbiased one: < 5
    losses = []
    for latent in (Hierarchical([3], ["binary"]), Binary(3)):
        one_layer = tiny_vae(latent, seed=1)
        torch.manual_seed(2)
        losses.append(GumbelSoftmax(0.5, 0.5, 0.0, analytic_kl=False).double()(one_layer, X, 4).loss)
    torch.testing.assert_close(losses[0], losses[1])


def test_the_relaxed_kl_of_two_layers_moves_with_the_temperature():
    """Unlike one layer's (test_gumbel_relaxed.py: the same at every tau, draw by draw), the relaxed chain's
    log q_tau(y) - log p_tau(y) moves with tau for the same noise, since each layer's conditional reads the relaxed
    layer drawn before it, and its mean grows as tau falls (docs/estimators.md, Several stochastic layers)."""
    vae = two_layer_vae(hidden=())
    with torch.no_grad():  # strong conditionals: the layers' dependence, and so the effect, is clear
        for p in [*vae.latent.inference.parameters(), *vae.latent.generative.parameters()]:
            p.mul_(4)
    q, prior, ratios = vae.posterior(X), vae.prior(), []
    for tau in (1.0, 0.1):
        tau = torch.tensor(tau, dtype=torch.float64)
        torch.manual_seed(0)
        y = vae.latent.relaxed(q, tau).base_dist.sample((20_000,))
        ratios.append(vae.latent.relaxed(q, tau).base_dist.log_prob(y) - vae.latent.relaxed(prior, tau).base_dist.log_prob(y))
    hot, cold = ratios
    assert (cold - hot).abs().max() > 1  # nats, draw by draw
    se = (hot.var(0) / len(hot) + cold.var(0) / len(cold)).sqrt()
    assert ((cold.mean(0) - hot.mean(0)) / se).min() > 5


def quadrature_bound(vae, x, S, nodes):
    """E[log (1/S) sum_s exp f(z_s, x)] for a 1 + 1 continuous-unit hierarchy, z_s drawn by hand from standard-normal
    noise through q(z1|x) and then q(z2|z1), by Gauss-Hermite quadrature on a 2S-dimensional grid of noise:
    deterministic and differentiable, the exact gradient up to quadrature error, shape [B]."""
    e, w = (torch.tensor(a, dtype=x.dtype) for a in np.polynomial.hermite_e.hermegauss(nodes))
    grid = torch.cartesian_prod(*[e] * (2 * S)).reshape(-1, 2 * S)
    mass = torch.cartesian_prod(*[w / math.sqrt(2 * math.pi)] * (2 * S)).reshape(-1, 2 * S).prod(1)
    first, second = vae.latent.layers
    q1 = first.posterior(vae.encoder(x))
    f = []
    for eps in grid.T.reshape(S, 2, -1, 1, 1):
        z1 = q1.base_dist.loc + q1.base_dist.scale * eps[0]
        q2 = second.posterior(vae.latent.inference[0](z1))
        z2 = q2.base_dist.loc + q2.base_dist.scale * eps[1]
        f.append(vae.log_weight(x, torch.cat([z1, z2], -1), vae.posterior(x)))
    bound = torch.logsumexp(torch.stack(f), 0) - math.log(S)
    return (mass.unsqueeze(-1) * bound).sum(0)


@pytest.mark.parametrize("objective,S,nodes", [(ELBO(analytic_kl=False), 1, 40), (IWAE(), 2, 10)], ids=["elbo", "iwae"])
def test_pathwise_gradients_through_continuous_layers_are_unbiased(objective, S, nodes):
    """Reparameterised draws through both layers (z2 = mu(z1) + sigma(z1) eps2, z1 = mu(x) + sigma(x) eps1) against
    the gradient of the bound by quadrature over the noise. The inference conditional's weights are tripled so that
    z2 leans on z1 enough that a draw cutting the path from z2 back to z1 fails here."""
    torch.manual_seed(1)
    vae = tiny_vae(Hierarchical([1, 1], ["continuous", "continuous"], hidden=[3]))
    with torch.no_grad():
        for p in vae.latent.inference.parameters():
            p.mul_(3)
    assert_matches(objective, vae, S, -quadrature_bound(vae, X, S, nodes).mean())
