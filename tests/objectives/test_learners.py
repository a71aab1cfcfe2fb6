"""The estimators that learn their control variates (REBAR, RELAX, Double-CV, RODEO): unbiased against the exact
gradient by enumeration whatever their parameters, their variance surrogate lowers the measured encoder-gradient
variance (both for REBAR and RELAX through two stochastic layers too), and the surrogate leaves the model's
gradients untouched to the last bit."""

import pytest
import torch

from tests.toys import X, assert_unbiased, tiny_vae, total_variance
from vaelab.hierarchical import Hierarchical
from vaelab.latents import Binary, Categorical
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad, gradient_draws
from vaelab.objectives import REBAR, RELAX, RODEO, DoubleCV

N = 200
PARTS = ("encoder", "decoder")
REPEATS = 10  # each draw is the mean of 10 independent ones: X's 3 data repeated, one forward call


def vae_with(kind, learn_prior=False):
    torch.manual_seed(1)
    return tiny_vae(Binary(D=3, learn_prior=learn_prior) if kind == "binary" else Categorical(D=2, K=3, learn_prior=learn_prior))


FAR = {"eta": -2.0, "log_temperature": 1.0, "scale": 4.0, "alpha": 3.0, "beta": -3.0}
COLD = {"eta": 3.0, "log_temperature": -2.5}  # lambda = 0.08: a near-hard relaxation, over-weighted


def far(objective, values=FAR):
    """The control-variate parameters moved far from their optimum (`values` by name), networks redrawn at random."""
    with torch.no_grad():
        for name, p in objective.named_parameters():
            if p.dim() == 0:
                p.fill_(values[name])
            else:
                p.normal_(0, 1)
    return objective


ESTIMATORS = {"rebar": (REBAR, 1), "relax": (RELAX, 1), "double_cv": (DoubleCV, 2), "rodeo": (RODEO, 3)}
CASES = [("rebar", "binary"), ("rebar", "discrete"), ("relax", "binary"), ("relax", "discrete"),
         ("double_cv", "binary"), ("rodeo", "binary")]


def built(name, vae, setting="default"):
    """The estimator in float64, its lazy layers materialised by one call."""
    cls, S = ESTIMATORS[name]
    objective = cls().double()
    objective(vae, X, S)
    return (far(objective) if setting == "far" else objective), S


def both_draws(objective, vae, S, n):
    """n independent gradients of the loss on X repeated REPEATS times, for the encoder's and the decoder's
    parameters, one call each."""
    params = {part: list(getattr(vae, part).parameters()) for part in PARTS}
    rows = {part: [] for part in PARTS}
    for _ in range(n):
        grads = torch.autograd.grad(objective(vae, X.repeat(REPEATS, 1), S).loss, params["encoder"] + params["decoder"])
        flat = torch.cat([g.flatten() for g in grads])
        split = sum(p.numel() for p in params["encoder"])
        rows["encoder"].append(flat[:split])
        rows["decoder"].append(flat[split:])
    return {part: torch.stack(r) for part, r in rows.items()}


@pytest.mark.parametrize("setting", ["default", "far"])
@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_mean_gradient_is_the_exact_elbo_gradient_whatever_the_control_variate(name, kind, setting):
    vae = vae_with(kind)
    torch.manual_seed(2)
    objective, S = built(name, vae, setting)
    draws = both_draws(objective, vae, S, N)
    for part in PARTS:
        truth = flat_grad(-exact.elbo(vae, X).mean(), list(getattr(vae, part).parameters()))
        assert_unbiased(draws[part], truth)


def encoder_variance(objective, vae, S, n=60):
    """The total variance of the encoder gradient on X repeated REPEATS times."""
    torch.manual_seed(3)
    return total_variance(gradient_draws(objective, vae, X.repeat(REPEATS, 1), S, n))


def trained(objective, vae, S, steps, maximize=False):
    """`steps` Adam steps on estimate.surrogate alone (on X repeated REPEATS times), the model fixed."""
    optimiser = torch.optim.Adam(objective.parameters(), lr=0.05, maximize=maximize)
    for _ in range(steps):
        optimiser.zero_grad()
        objective(vae, X.repeat(REPEATS, 1), S).surrogate.backward()
        optimiser.step()
    return objective


@pytest.mark.parametrize("name,kind", [("rebar", "binary"), ("relax", "discrete"), ("double_cv", "binary"),
                                       ("rodeo", "binary")])
def test_descending_the_surrogate_lowers_the_encoder_gradient_variance_and_ascending_raises_it(name, kind):
    vae = vae_with(kind)
    torch.manual_seed(4)
    start = far(built(name, vae)[0]).state_dict()
    S = ESTIMATORS[name][1]
    objective, _ = built(name, vae)
    objective.load_state_dict(start)
    before = encoder_variance(objective, vae, S)
    lowered = encoder_variance(trained(objective, vae, S, 200), vae, S)
    objective.load_state_dict(start)
    raised = encoder_variance(trained(objective, vae, S, 20, maximize=True), vae, S)
    assert lowered < 0.5 * before and raised > before, (lowered, before, raised)


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_surrogate_leaves_the_model_gradients_unchanged_to_the_last_bit(name, kind):
    vae = vae_with(kind, learn_prior=True)
    objective, S = built(name, vae, "far")
    model, own = list(vae.parameters()), list(objective.parameters())
    estimate = objective(vae, X, S)
    alone = torch.autograd.grad(estimate.loss, model, retain_graph=True)
    together = torch.autograd.grad(estimate.loss + estimate.surrogate, model, retain_graph=True)
    assert all(torch.equal(a, b) for a, b in zip(alone, together))
    assert flat_grad(estimate.loss, own).abs().max() == 0          # the loss trains nothing of the objective's
    assert flat_grad(estimate.surrogate, own).abs().max() > 0


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_estimate_and_surrogate_stay_finite_at_saturated_logits_in_float32(name, kind):
    vae = vae_with(kind).float()
    with torch.no_grad():
        vae.encoder[-1].bias.copy_(torch.linspace(-60, 60, len(vae.encoder[-1].bias)))
    cls, S = ESTIMATORS[name]
    objective = cls()
    torch.manual_seed(5)
    estimate = objective(vae, X.float().repeat(50, 1), S)
    grads = torch.autograd.grad(estimate.loss + estimate.surrogate, list(vae.parameters()) + list(objective.parameters()))
    assert all(g.isfinite().all() for g in grads)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_refused_where_it_does_not_apply(name):
    objective = ESTIMATORS[name][0]()
    assert "latent=continuous is not supported" in " ".join(objective.problems("continuous", 4))
    assert objective.problems("binary", 4) == [] and objective.score_function and objective.lr > 0
    two_layers = objective.problems("binary", 4, depth=2)
    if name in ("rebar", "relax"):  # the per-layer form: any S, both discrete kinds
        assert two_layers == [] and objective.problems("discrete", 1, depth=2) == []
        assert "latent=continuous is not supported" in " ".join(objective.problems("continuous", 1, depth=2))
    else:
        assert any("L=2" in p for p in two_layers)
    if name in ("double_cv", "rodeo"):
        assert any("S=1" in p for p in objective.problems("binary", 1))
        assert "latent=discrete is not supported" in " ".join(objective.problems("discrete", 4))


# --- two stochastic layers (REBAR, RELAX) -----------------------------------------------------------

LAYER_REPEATS = 50
LAYER_CASES = [("rebar", ("binary", "binary")), ("rebar", ("discrete", "discrete")), ("relax", ("binary", "binary")),
               ("relax", ("discrete", "binary"))]


def two_layer_vae(kinds):
    """q(z1|x) q(z2|z1), p(z2) p(z1|z2) with a learned p(z2): 16 values of z (two binary units a layer), 9 (one
    categorical of 3 classes a layer) or 6. The inference conditional's weights are tripled so that z2 leans on z1
    enough that a control variate cutting the path from z1 through q(z2|z1) is seen
    (test_the_check_sees_the_path_through_the_next_layer_cut)."""
    torch.manual_seed(1)
    widths = [1, 1] if "discrete" in kinds else [2, 2]
    vae = tiny_vae(Hierarchical(widths, list(kinds), hidden=[3], classes=3, learn_prior=True))
    with torch.no_grad():
        for p in vae.latent.inference.parameters():
            p.mul_(3)
    return vae


def layer_sides(vae):
    """The encoder and the inference conditional; the decoder, the generative conditional and the prior."""
    encoder = list(vae.encoder.parameters()) + list(vae.latent.inference.parameters())
    return encoder, [p for p in vae.parameters() if all(p is not e for e in encoder)]


def assert_unbiased_through_two_layers(objective, vae, z=5.0):
    """N gradient draws at S = 1, each the mean over X repeated LAYER_REPEATS times, against the exact ELBO gradient
    on both sides."""
    encoder, decoder = layer_sides(vae)
    torch.manual_seed(2)
    draws = torch.stack([flat_grad(objective(vae, X.repeat(LAYER_REPEATS, 1), 1).loss, encoder + decoder)
                         for _ in range(N)])
    truth = flat_grad(-exact.elbo(vae, X).mean(), encoder + decoder)
    size = sum(p.numel() for p in encoder)
    assert_unbiased(draws[:, :size], truth[:size], z)
    assert_unbiased(draws[:, size:], truth[size:], z)


@pytest.mark.parametrize("setting", ["default", "far", "cold"])
@pytest.mark.parametrize("name,kinds", LAYER_CASES, ids=[f"{n}-{'+'.join(k)}" for n, k in LAYER_CASES])
def test_two_layer_mean_gradient_is_the_exact_elbo_gradient_whatever_the_control_variate(name, kinds, setting):
    vae = two_layer_vae(kinds)
    objective = ESTIMATORS[name][0]().double()
    objective(vae, X, 1)
    if setting != "default":
        far(objective, FAR if setting == "far" else COLD)
    assert_unbiased_through_two_layers(objective, vae)


class CutREBAR(REBAR):
    """REBAR with the relaxed layers after layer k reading layer k's relaxed value detached: c_1 then depends on z1
    through q(z2|z1) without its pathwise derivative saying so."""

    def relaxed_pass(self, following, *args):
        return super().relaxed_pass([lambda value, c=c: c(value.detach()) for c in following], *args)


def test_the_check_sees_the_path_through_the_next_layer_cut():
    vae = two_layer_vae(("binary", "binary"))
    objective = CutREBAR().double()
    with pytest.raises(AssertionError, match="standard errors"):
        assert_unbiased_through_two_layers(objective, vae, z=6.0)


@pytest.mark.parametrize("name,kinds", LAYER_CASES, ids=[f"{n}-{'+'.join(k)}" for n, k in LAYER_CASES])
def test_two_layer_estimate_and_surrogate_stay_finite_at_saturated_logits_in_float32(name, kinds):
    vae = two_layer_vae(kinds).float()
    with torch.no_grad():  # both layers' logits out to +-60 and beyond, the second's at every draw of the first
        for output in (vae.encoder[-1], vae.latent.inference[0][-1]):
            output.bias.copy_(torch.linspace(-60, 60, len(output.bias)))
            output.weight.mul_(20)
    objective = ESTIMATORS[name][0]()
    torch.manual_seed(5)
    estimate = objective(vae, X.float().repeat(50, 1), 1)
    grads = torch.autograd.grad(estimate.loss + estimate.surrogate, list(vae.parameters()) + list(objective.parameters()))
    assert all(g.isfinite().all() for g in grads)


def two_layer_encoder_variance(objective, vae, n=60):
    """The total variance of the gradient for the encoder and the inference conditional on X repeated REPEATS times."""
    encoder, _ = layer_sides(vae)
    torch.manual_seed(3)
    return total_variance(torch.stack([flat_grad(objective(vae, X.repeat(REPEATS, 1), 1).loss, encoder)
                                       for _ in range(n)]))


@pytest.mark.parametrize("name,kinds", [("rebar", ("binary", "binary")), ("relax", ("discrete", "discrete"))])
def test_two_layer_surrogate_lowers_the_encoder_gradient_variance_and_ascending_raises_it(name, kinds):
    vae = two_layer_vae(kinds)
    torch.manual_seed(4)
    objective = ESTIMATORS[name][0]().double()
    objective(vae, X, 1)
    start = {key: value.clone() for key, value in far(objective).state_dict().items()}
    before = two_layer_encoder_variance(objective, vae)
    lowered = two_layer_encoder_variance(trained(objective, vae, 1, 200), vae)
    objective.load_state_dict(start)
    raised = two_layer_encoder_variance(trained(objective, vae, 1, 20, maximize=True), vae)
    assert lowered < 0.5 * before and raised > before, (lowered, before, raised)
