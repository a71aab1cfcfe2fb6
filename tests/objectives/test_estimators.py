"""Stateful baselines, IWAE/DReG, VIMCO, ARM/DisARM and Gumbel-softmax against exact gradients: by enumeration
on the tiny model, by quadrature on the Gaussian toy."""

import math

import pytest
import torch

from tests.toys import GaussianToy, X, assert_unbiased, discrepancy, tiny_vae, total_variance
from vaelab.errors import ConfigError
from vaelab.latents import Binary, Categorical, Gaussian
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad, gradient_draws
from vaelab.objectives import ELBO, IWAE, VIMCO, DisARM, GumbelSoftmax, Reinforce, VarianceLoss

N = 3000
TOY_X = torch.tensor([[1.2], [-0.5]])


def exact_grad(value, vae, part):
    return flat_grad(value, list(getattr(vae, part).parameters()))


def vae_with(latent):
    torch.manual_seed(1)
    return tiny_vae(latent)


def categorical():
    return Categorical(D=2, K=3)


def binary():
    return Binary(D=3)


# --- REINFORCE with stateful baselines -------------------------------------------------------------

def warmed_up(objective, vae, steps=100):
    """Train the baseline's state (running averages by `advance`; NVIL's network by its surrogate) on X; the draws
    that follow, which never advance it, are then independent and identically distributed."""
    objective.double()(vae, X, 4)  # materialises NVIL's lazy first layer
    parameters = list(objective.parameters())
    optimiser = torch.optim.Adam(parameters, lr=1e-2) if parameters else None
    for _ in range(steps):
        estimate = objective(vae, X, 4)
        if optimiser:
            optimiser.zero_grad()
            estimate.surrogate.backward()
            optimiser.step()
        objective.advance(estimate)
    return objective


@pytest.mark.parametrize("baseline,normalise", [("ema", False), ("nvil", False), ("nvil", True)])
def test_stateful_baselines_are_unbiased_for_the_elbo_gradient(baseline, normalise):
    """b = c (EMA) or c + h(x) (NVIL) does not depend on the current draws, so E[(f - b) grad log q] is the
    ELBO gradient; NVIL's normalisation divides it by its running scale max(1, std)."""
    vae = vae_with(categorical())
    objective = warmed_up(Reinforce(baseline, normalise=normalise), vae)
    assert objective.baseline.mean.abs() > 0.5  # the baseline moved: the test exercises a nonzero b
    scale = objective.baseline.scale if baseline == "nvil" else 1.0
    for part in ("encoder", "decoder"):
        truth = exact_grad(-exact.elbo(vae, X).mean(), vae, part) / (scale if part == "encoder" else 1.0)
        assert_unbiased(gradient_draws(objective, vae, X, 2, N, part), truth)


@pytest.mark.parametrize("baseline", ["ema", "nvil"])
def test_baseline_state_advances_only_in_advance_and_travels_in_the_state_dict(baseline):
    vae = vae_with(categorical())
    objective = Reinforce(baseline).double()
    objective(vae, X, 2)
    state = {k: v.clone() for k, v in objective.state_dict().items()}
    assert {"baseline.mean"} | ({"baseline.var", "baseline.net.0.weight"} if baseline == "nvil" else set()) <= set(state)
    estimate = objective(vae, X, 2)
    assert all(torch.equal(v, objective.state_dict()[k]) for k, v in state.items())
    objective.advance(estimate)
    f = estimate.elbo  # the mean of f over the draws, per datum
    if baseline == "ema":
        torch.testing.assert_close(objective.baseline.mean, 0.1 * f.mean())  # from 0 by (1 - decay) of the batch mean
    assert not torch.equal(state["baseline.mean"], objective.baseline.mean)


def test_nvil_regression_loss_is_a_surrogate_that_trains_the_baseline_alone():
    vae = vae_with(categorical())
    objective = Reinforce("nvil").double()
    estimate = objective(vae, X, 4)
    model = list(vae.parameters())
    assert flat_grad(estimate.surrogate, model).abs().max() == 0
    assert flat_grad(estimate.surrogate, list(objective.parameters())).abs().max() > 0
    assert flat_grad(estimate.loss, list(objective.parameters())).abs().max() == 0


@pytest.mark.parametrize("baseline", ["sometimes", "mean"])
def test_unknown_baseline_is_refused_naming_the_options(baseline):
    with pytest.raises(ConfigError, match=f"loss.baseline='{baseline}'.*none, loo, ema, nvil"):
        Reinforce(baseline)


# --- IWAE and DReG on the Gaussian toy -------------------------------------------------------------

def test_quadrature_reference_is_the_closed_form_elbo_at_one_sample():
    toy = GaussianToy()
    torch.testing.assert_close(toy.quadrature_iwae(TOY_X, 1), toy.exact_elbo(TOY_X))
    assert (toy.quadrature_iwae(TOY_X, 3) > toy.quadrature_iwae(TOY_X, 2)).all()


@pytest.mark.parametrize("dreg", [False, True], ids=["iwae", "dreg"])
@pytest.mark.parametrize("S", [2, 3])
def test_iwae_encoder_gradient_is_unbiased_for_the_bound(dreg, S):
    toy = GaussianToy()
    torch.manual_seed(0)
    truth = exact_grad(-toy.quadrature_iwae(TOY_X, S).mean(), toy, "encoder")
    draws = gradient_draws(IWAE(dreg), toy, TOY_X, S, N)
    assert_unbiased(draws, truth)
    assert discrepancy(draws, exact_grad(-toy.exact_elbo(TOY_X).mean(), toy, "encoder")) > 5  # not the ELBO's


def test_dreg_has_lower_encoder_variance_than_iwae():
    toy = GaussianToy()
    torch.manual_seed(0)
    assert total_variance(gradient_draws(IWAE(True), toy, TOY_X, 8, 1000)) < \
        total_variance(gradient_draws(IWAE(False), toy, TOY_X, 8, 1000))


def test_iwae_decoder_gradient_is_unbiased_for_the_bound():
    """On a tiny continuous VAE, against a high-sample reference: the decoder gradient of the mean of
    200k independent 2-sample bounds (its Monte Carlo error is ~7% of the 1000 draws' standard error)."""
    vae = vae_with(Gaussian(1))
    torch.manual_seed(2)
    q = vae.posterior(X)
    z = q.mean + q.stddev * torch.randn(2, 200_000, *q.mean.shape, dtype=X.dtype)
    reference = torch.logsumexp(vae.log_weight(X, z, q), 0).mean() - torch.log(torch.tensor(2.0))
    truth = exact_grad(-reference, vae, "decoder")
    for dreg in (False, True):
        assert_unbiased(gradient_draws(IWAE(dreg), vae, X, 2, 1000, "decoder"), truth, z=6)


# --- VIMCO -----------------------------------------------------------------------------------------

def test_enumerated_iwae_bound_is_the_elbo_at_one_sample_and_grows_with_S():
    vae = vae_with(categorical())
    torch.testing.assert_close(exact.iwae(vae, X, 1), exact.elbo(vae, X))
    assert (exact.iwae(vae, X, 2) > exact.elbo(vae, X)).all()
    assert (exact.iwae(vae, X, 3) > exact.iwae(vae, X, 2)).all()


@pytest.mark.parametrize("latent,S", [(categorical, 2), (binary, 3)], ids=["categorical-S2", "binary-S3"])
def test_vimco_is_unbiased_for_the_gradient_of_the_iwae_bound(latent, S):
    vae = vae_with(latent())
    for part in ("encoder", "decoder"):
        truth = exact_grad(-exact.iwae(vae, X, S).mean(), vae, part)
        assert_unbiased(gradient_draws(VIMCO(), vae, X, S, N, part), truth)


# --- ARM and DisARM --------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["arm", "disarm"])
@pytest.mark.parametrize("S", [2, 4])
def test_arm_and_disarm_are_unbiased_for_the_elbo_gradient(variant, S):
    vae = vae_with(binary())
    for part in ("encoder", "decoder"):
        truth = exact_grad(-exact.elbo(vae, X).mean(), vae, part)
        assert_unbiased(gradient_draws(DisARM(variant), vae, X, S, N, part), truth)


def test_disarm_needs_an_even_number_of_samples():
    assert any("even" in p for p in DisARM().problems("binary", 3))
    assert DisARM().problems("binary", 4) == []
    with pytest.raises(ConfigError, match="arm, disarm"):
        DisARM("rao")


# --- Gumbel-softmax --------------------------------------------------------------------------------

def gumbel_bias(vae, part, tau, n=40, S=4000):
    """|mean gradient - exact ELBO gradient| at a fixed temperature, and the standard error of that mean."""
    draws = gradient_draws(GumbelSoftmax(tau0=tau, tau_min=tau, rate=0.0).double(), vae, X, S, n, part)
    truth = exact_grad(-exact.elbo(vae, X).mean(), vae, part)
    return (draws.mean(0) - truth).norm().item(), draws.std(0).norm().item() / n**0.5


@pytest.mark.parametrize("latent", [categorical, binary], ids=["categorical", "binary"])
def test_gumbel_is_biased_and_the_bias_shrinks_as_the_temperature_falls(latent):
    vae = vae_with(latent())
    for part in ("encoder", "decoder"):
        (b1, se1), (b2, se2), (b3, se3) = (gumbel_bias(vae, part, tau) for tau in (1.0, 0.5, 0.25))
        assert b1 > 10 * se1, "biased at tau = 1"
        assert b1 - b2 > 3 * (se1 + se2) and b2 - b3 > 3 * (se2 + se3), (part, b1, b2, b3)
        assert b3 < b1 / 2


def temperatures(objective, vae, steps):
    """The temperature of each of `steps` training steps, each followed by `advance`."""
    found = []
    for _ in range(steps):
        estimate = objective(vae, X, 1)
        found.append(estimate.metrics["temperature"].item())
        objective.advance(estimate)
    return found


def test_gumbel_temperature_follows_its_schedule_and_resumes_from_the_state_dict():
    vae = vae_with(binary())
    objective = GumbelSoftmax(tau0=2.0, tau_min=0.5, rate=0.3).double()
    schedule = [max(0.5, 2.0 * math.exp(-0.3 * step)) for step in range(10)]
    assert temperatures(objective, vae, 3) == pytest.approx(schedule[:3])
    assert objective(vae, X, 1).metrics["temperature"].item() == pytest.approx(schedule[3])
    assert objective.step.item() == 3  # a call without advance did not move it
    resumed = GumbelSoftmax(tau0=2.0, tau_min=0.5, rate=0.3).double()
    resumed.load_state_dict(objective.state_dict())
    later = temperatures(resumed, vae, 7)
    assert later == pytest.approx(schedule[3:]) and later[-1] == 0.5


@pytest.mark.parametrize("latent", [categorical, binary], ids=["categorical", "binary"])
def test_straight_through_decodes_values_of_the_support(latent):
    """Forward, the decoder sees hard z (so the relaxed bound with straight_through evaluates the exact
    log-likelihood of hard z, a draw from q by the Gumbel-max trick); backward, gradients reach the encoder."""
    vae = vae_with(latent())
    seen = []
    hook = vae.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    estimate = GumbelSoftmax(tau0=0.7, straight_through=True).double()(vae, X, 5)
    hook.remove()
    torch.testing.assert_close(seen[0], seen[0].round())  # one-hot up to rounding in hard + z - z.detach()
    assert flat_grad(estimate.loss, list(vae.encoder.parameters())).abs().max() > 0


def test_gumbel_relaxed_kl_is_the_relaxed_log_density_ratio():
    """analytic_kl=False: the bound is E[log p(x|z) + log p_tau(z) - log q_tau(z)]; with a relaxed prior
    equal to the relaxed posterior (zero logits on both) the KL part vanishes and the two settings differ
    only by the exact KL, which is then also zero."""
    vae = vae_with(binary())
    with torch.no_grad():
        vae.encoder[-1].weight.zero_()
        vae.encoder[-1].bias.zero_()
    torch.manual_seed(3)
    relaxed = GumbelSoftmax(analytic_kl=False).double()(vae, X, 7).loss
    torch.manual_seed(3)
    analytic = GumbelSoftmax(analytic_kl=True).double()(vae, X, 7).loss
    torch.testing.assert_close(relaxed, analytic)


# --- learned priors --------------------------------------------------------------------------------

ELBO_ESTIMATORS = [(Reinforce("loo"), 4), (VarianceLoss("elbo", 0.5), 4), (GumbelSoftmax(), 4)]


@pytest.mark.parametrize("objective,S", ELBO_ESTIMATORS + [(DisARM(), 4)], ids=["reinforce", "vargrad", "gumbel", "disarm"])
def test_learned_prior_gets_the_elbo_gradient(objective, S):
    vae = vae_with(Binary(D=3, learn_prior=True))
    truth = exact_grad(-exact.elbo(vae, X).mean(), vae, "latent")
    assert truth.abs().max() > 0.01
    assert_unbiased(gradient_draws(objective.double(), vae, X, S, 1000, "latent"), truth)


@pytest.mark.parametrize("objective,S", ELBO_ESTIMATORS, ids=["reinforce", "vargrad", "gumbel"])
def test_learned_categorical_prior_gets_the_elbo_gradient(objective, S):
    vae = vae_with(Categorical(D=2, K=3, learn_prior=True))
    truth = exact_grad(-exact.elbo(vae, X).mean(), vae, "latent")
    assert_unbiased(gradient_draws(objective.double(), vae, X, S, 1000, "latent"), truth)


def test_learned_prior_gets_the_iwae_bound_gradient_under_vimco():
    vae = vae_with(Categorical(D=2, K=3, learn_prior=True))
    truth = exact_grad(-exact.iwae(vae, X, 2).mean(), vae, "latent")
    assert_unbiased(gradient_draws(VIMCO(), vae, X, 2, 1000, "latent"), truth)


# --- variance orderings the literature fixes -------------------------------------------------------

def test_leave_one_out_lowers_reinforce_variance():
    vae = vae_with(categorical())
    none = total_variance(gradient_draws(Reinforce("none"), vae, X, 4, 1000))
    loo = total_variance(gradient_draws(Reinforce("loo"), vae, X, 4, 1000))
    assert none > loo


def test_disarm_variance_is_at_most_arm_variance():
    vae = vae_with(binary())
    arm = total_variance(gradient_draws(DisARM("arm"), vae, X, 4, 1000))
    disarm = total_variance(gradient_draws(DisARM("disarm"), vae, X, 4, 1000))
    assert disarm <= arm


def test_pathwise_elbo_has_lower_variance_than_the_score_function_on_the_gaussian_toy():
    toy = GaussianToy()
    torch.manual_seed(0)
    pathwise = total_variance(gradient_draws(ELBO(), toy, TOY_X, 4, 1000))
    score = total_variance(gradient_draws(Reinforce("loo"), toy, TOY_X, 4, 1000))
    assert pathwise < score


def test_the_module_advances_the_objective_once_a_step_after_the_optimiser_step(tmp_path):
    from tests.metrics.test_diagnostics import fit

    steps = []

    class Watched(Reinforce):
        def forward(self, vae, x, S):
            weight = next(vae.encoder.parameters())
            steps.append((weight.detach().clone(), weight))
            return super().forward(vae, x, S)

        def advance(self, estimate):
            before, weight = steps[-1]
            steps[-1] = not torch.equal(before, weight)   # the optimiser has stepped
            super().advance(estimate)

    module, _ = fit(Watched("ema"), tmp_path, steps=3)
    assert steps == [True, True, True]
    assert module.objective.baseline.mean != 0
