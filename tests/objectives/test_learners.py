"""The estimators that learn their control variates (REBAR, RELAX, Double-CV, RODEO): unbiased against the exact
gradient by enumeration whatever their parameters, their variance surrogate lowers the measured encoder-gradient
variance, and the surrogate leaves the model's gradients untouched to the last bit."""

import pytest
import torch

from tests.toys import X, assert_unbiased, tiny_vae, total_variance
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


def far(objective):
    """The control-variate parameters moved far from their optimum, networks left at their random start."""
    with torch.no_grad():
        for name, p in objective.named_parameters():
            if p.dim() == 0:
                p.fill_({"eta": -2.0, "log_temperature": 1.0, "scale": 4.0, "alpha": 3.0, "beta": -3.0}[name])
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
    assert any("L=2" in p for p in objective.problems("binary", 4, depth=2))
    assert objective.problems("binary", 4) == [] and objective.score_function and objective.lr > 0
    if name in ("double_cv", "rodeo"):
        assert any("S=1" in p for p in objective.problems("binary", 1))
        assert "latent=discrete is not supported" in " ".join(objective.problems("discrete", 4))
