"""Gumbel-softmax with the relaxed KL (`analytic_kl=False`) on non-zero posterior and prior logits: its log-density
ratio against the Concrete densities written out from Maddison et al. (2017), Definition 1 and the binary
Concrete, and its bias at three temperatures, as docs/estimators.md states it."""

import math

import pytest
import torch

from tests.toys import X, tiny_vae
from vaelab.latents import Binary, Categorical
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad, gradient_draws
from vaelab.objectives import GumbelSoftmax

TEMPERATURES = (1.0, 0.3, 0.1)
PRIOR_LOGITS = {"categorical": [[0.6, -0.9, 0.1], [-0.4, 0.0, 1.1]], "binary": [0.8, -1.2, 0.3]}


def vae_with(kind):
    """The tiny VAE with a non-uniform prior (a learned prior, set away from zero)."""
    torch.manual_seed(1)
    vae = tiny_vae(Categorical(D=2, K=3, learn_prior=True) if kind == "categorical" else Binary(D=3, learn_prior=True))
    with torch.no_grad():
        vae.latent.prior_logits.copy_(torch.tensor(PRIOR_LOGITS[kind]))
    return vae


def concrete_log_density(logits, tau, z):
    """Definition 1: p(z) = (K-1)! tau^(K-1) prod_k alpha_k z_k^(-tau-1) / sum_i alpha_i z_i^(-tau), alpha = exp(logits),
    summed over the latent's variables (last axis: the K classes)."""
    K = z.shape[-1]
    log_alpha, log_z = logits, z.log()
    per_class = log_alpha - (tau + 1) * log_z - torch.logsumexp(log_alpha - tau * log_z, -1, keepdim=True)
    return (math.lgamma(K) + (K - 1) * math.log(tau) + per_class.sum(-1)).sum(-1)


def binary_concrete_log_density(logits, tau, z):
    """p(z) = tau alpha z^(-tau-1) (1-z)^(-tau-1) / (alpha z^(-tau) + (1-z)^(-tau))^2, alpha = exp(logits), summed
    over the variables."""
    alpha = logits.exp()
    density = tau * alpha * z ** (-tau - 1) * (1 - z) ** (-tau - 1) / (alpha * z ** (-tau) + (1 - z) ** (-tau)) ** 2
    return density.log().sum(-1)


def discrete_kl(q_logits, p_logits, kind):
    """KL(q || p) of the discrete distributions, per datum."""
    if kind == "binary":
        q_logits, p_logits = (torch.stack([logits, torch.zeros_like(logits)], -1) for logits in (q_logits, p_logits))
    log_q, log_p = q_logits.log_softmax(-1), p_logits.log_softmax(-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1).flatten(1).sum(-1)


def relaxed_minus_analytic(vae, tau, S, seed):
    """The relaxed-KL loss minus the analytic-KL loss on the same draws: mean_{s,b}[log q_tau(z) - log p_tau(z)] - mean_b KL."""
    losses = []
    for analytic_kl in (False, True):
        torch.manual_seed(seed)
        losses.append(GumbelSoftmax(tau, tau, 0.0, analytic_kl=analytic_kl).double()(vae, X, S).loss)
    return losses[0] - losses[1]


@pytest.mark.parametrize("kind", ["categorical", "binary"])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_relaxed_kl_is_the_concrete_log_density_ratio(kind, tau):
    vae, S, seed = vae_with(kind), 64, 4
    gap = relaxed_minus_analytic(vae, tau, S, seed)
    torch.manual_seed(seed)                                    # the objective's draws, again
    with torch.no_grad():
        q = vae.posterior(X)
        z = vae.latent.relaxed(q, torch.tensor(tau, dtype=torch.float64)).rsample((S,))
        q_logits, p_logits = q.base_dist.logits, vae.latent.prior_logits.expand_as(q.base_dist.logits)
        density = concrete_log_density if kind == "categorical" else binary_concrete_log_density
        ratio = density(q_logits, tau, z) - density(p_logits, tau, z)
        expected = ratio.mean() - discrete_kl(q_logits, p_logits, kind).mean()
    assert ratio.std() > 0.1                                   # non-zero logits: the ratio varies with z
    torch.testing.assert_close(gap.detach(), expected)


@pytest.mark.parametrize("kind", ["categorical", "binary"])
def test_relaxed_kl_is_the_same_at_every_temperature_draw_by_draw(kind):
    """log q_tau(z) - log p_tau(z) at the draw made from the same Gumbel noise, and its encoder gradient, do not
    depend on tau: both relaxed variables are one invertible map of the perturbed logits' differences."""
    vae = vae_with(kind)
    encoder = list(vae.encoder.parameters())
    gaps = [relaxed_minus_analytic(vae, tau, 16, seed=7) for tau in TEMPERATURES]
    gradients = [flat_grad(gap, encoder) for gap in gaps]
    assert gradients[0].abs().max() > 0.01                     # non-zero logits: a KL term that moves
    for gap, gradient in zip(gaps[1:], gradients[1:]):
        torch.testing.assert_close(gap, gaps[0])
        torch.testing.assert_close(gradient, gradients[0])


def logistic_kl(a, b, width=60.0, points=200001):
    """KL(Logistic(a, 1) || Logistic(b, 1)) by the trapezoid rule, log f_a(t) = -(t - a) - 2 log(1 + exp(-(t - a)))."""
    t = torch.linspace(-width, width, points, dtype=torch.float64).unsqueeze(-1)
    log_f = [-(t - c) - 2 * torch.nn.functional.softplus(-(t - c)) for c in (a, b)]
    return torch.trapezoid(log_f[0].exp() * (log_f[0] - log_f[1]), t, dim=0)


@pytest.mark.parametrize("kind", ["categorical", "binary"])
def test_relaxed_kl_exceeds_the_discrete_kl_at_every_temperature(kind):
    """The relaxed KL estimates KL of the perturbed logits' differences (binary: of Logistic(a, 1) and
    Logistic(b, 1)), at least the discrete KL, by the same gap at every temperature."""
    vae, n = vae_with(kind), 20000
    with torch.no_grad():
        q, prior = vae.posterior(X), vae.prior()
        q_logits, p_logits = q.base_dist.logits, vae.latent.prior_logits.expand_as(q.base_dist.logits)
        kl = discrete_kl(q_logits, p_logits, kind)
        for tau in TEMPERATURES:
            relaxed_q, relaxed_p = (vae.latent.relaxed(d, torch.tensor(tau, dtype=torch.float64)) for d in (q, prior))
            y = relaxed_q.base_dist.sample((n,))
            ratio = relaxed_q.base_dist.log_prob(y) - relaxed_p.base_dist.log_prob(y)
            mean, se = ratio.mean(0), ratio.std(0) / math.sqrt(n)
            assert ((mean - kl) > 10 * se).all(), (tau, mean, kl)
            if kind == "binary":
                truth = torch.stack([logistic_kl(a, b).sum() for a, b in zip(q_logits, p_logits)])
                assert ((mean - truth).abs() < 5 * se).all(), (tau, mean, truth)


def encoder_bias(vae, tau, analytic_kl, n=20, S=2000):
    """||mean encoder gradient - exact ELBO gradient|| / ||exact|| at a fixed temperature, and its standard error."""
    truth = flat_grad(-exact.elbo(vae, X).mean(), list(vae.encoder.parameters()))
    draws = gradient_draws(GumbelSoftmax(tau, tau, 0.0, analytic_kl=analytic_kl).double(), vae, X, S, n)
    return (draws.mean(0) - truth).norm().item() / truth.norm().item(), draws.std(0).norm().item() / n**0.5 / truth.norm().item()


@pytest.mark.parametrize("kind", ["categorical", "binary"])
def test_relaxed_kl_bias_does_not_fall_with_the_temperature_and_the_analytic_one_does(kind):
    vae = vae_with(kind)
    torch.manual_seed(0)
    relaxed = [encoder_bias(vae, tau, analytic_kl=False) for tau in TEMPERATURES]
    analytic = [encoder_bias(vae, tau, analytic_kl=True) for tau in TEMPERATURES]
    (r1, _), (r3, r3_se) = relaxed[0], relaxed[-1]
    (a1, _), (a3, _) = analytic[0], analytic[-1]
    assert r3 > 10 * r3_se and r3 > 0.75 * r1, relaxed
    assert a3 < a1 / 4 and a3 < r3 / 10, analytic
