"""ARMS, the unordered set estimator and sum-and-sample against the exact ELBO gradient by enumeration on the tiny
model; their coupled and without-replacement draws; their refusals; and training steps that read nothing back."""

import itertools
import math

import pytest
import torch

from tests.runs.test_host_sync import reads_in_training
from tests.toys import X, assert_unbiased, discrepancy, tiny_vae
from vaelab.errors import ConfigError
from vaelab.latents import Binary, Categorical
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad
from vaelab.objectives import ARMS, DisARM, SumAndSample, UnorderedSet
from vaelab.objectives.beams import beam_search
from vaelab.objectives.unordered_set import leave_out_log_ratios

REPEATS, DRAWS = 100, 60  # each draw is the mean gradient over X repeated: 6000 single draws at the cost of 60 steps


def model(latent):
    torch.manual_seed(1)
    return tiny_vae(latent)


def encoder_and_decoder(vae):
    return [p for part in ("encoder", "decoder") for p in getattr(vae, part).parameters()]


def draws(objective, vae, S, n=DRAWS):
    """n gradients [n, P] for the encoder and decoder, each averaged over REPEATS independent draws per datum (the
    batch X repeated), against the exact gradient of the mean ELBO on X, which the repeated batch shares."""
    params = encoder_and_decoder(vae)
    torch.manual_seed(S)
    batch = X.repeat(REPEATS, 1)
    return torch.stack([flat_grad(objective(vae, batch, S).loss, params) for _ in range(n)])


def exact_gradient(vae):
    return flat_grad(-exact.elbo(vae, X).mean(), encoder_and_decoder(vae))


# --- ARMS ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("S", [2, 3, 5])
def test_arms_is_unbiased_for_the_elbo_gradient(S):
    vae = model(Binary(D=3))
    assert_unbiased(draws(ARMS(), vae, S), exact_gradient(vae))


class Undebiased(ARMS):
    """Leave-one-out REINFORCE on the coupled draws without the debiasing factor c."""

    @staticmethod
    def logit_gradient(logits, b, f):
        S = len(b)
        return ((f - f.mean(0)).unsqueeze(-1) * (b - torch.sigmoid(logits))).sum(0) / (S - 1)


def test_arms_without_its_debiasing_factor_is_biased():
    """The coupled draws are correlated, so their leave-one-out baselines are not independent of each draw: without c
    the mean moves by tens of standard errors (the check above has the power to see a missing factor)."""
    vae = model(Binary(D=3))
    assert discrepancy(draws(Undebiased(), vae, 4), exact_gradient(vae)) > 10


@pytest.mark.parametrize("S", [2, 3, 6])
def test_arms_draws_are_each_from_q_and_coupled_as_the_dirichlet_copula_says(S):
    """P(b_s = 1) = p for each s, and two draws share the rarer value m = min(p, 1 - p) with probability
    (2 m^{1/(S-1)} - 1)_+^{S-1}, the copula's joint distribution behind c."""
    torch.manual_seed(0)
    logits = torch.tensor([-2.0, -0.3, 0.0, 0.8, 3.0], dtype=torch.float64)
    n = 100_000
    b = ARMS.draw(logits.expand(n, -1), S)
    p, m = torch.sigmoid(logits), torch.sigmoid(-logits.abs())
    torch.testing.assert_close(b.mean((0, 1)), p, rtol=0, atol=5 * (0.25 / (n * S)) ** 0.5)
    rarer = torch.where(logits < 0, b, 1 - b)
    both = (rarer[0] * rarer[1]).mean(0)
    joint = (2 * m ** (1 / (S - 1)) - 1).clamp(min=0) ** (S - 1)
    torch.testing.assert_close(both, joint, rtol=0, atol=5 * (0.25 / n) ** 0.5)
    if S == 2:
        assert both.max() == 0  # antithetic: never the rarer value twice


def test_arms_at_two_samples_is_disarm_on_the_same_pair():
    """Dimitriev & Zhou: with S = 2 the Dirichlet copula is the antithetic pair (u, 1 - u), c = sigmoid(|a|), and
    ARMS is DisARM (Dong et al. 2020) draw by draw."""
    torch.manual_seed(0)
    logits = torch.randn(500, 6, dtype=torch.float64) * 2
    b = ARMS.draw(logits, 2)
    f = torch.randn(2, 500, dtype=torch.float64)
    disarm = DisARM().pair_gradients(logits, None, b[:1], b[1:], f[:1], f[1:]).mean(0)
    torch.testing.assert_close(ARMS.logit_gradient(logits, b, f), disarm)
    assert (b[0] != b[1]).any()


# --- draws without replacement ---------------------------------------------------------------------

def log_set_probability(log_p, mass=1.0):
    """log P(U) by its definition: the sum over the orderings of U of prod_i p_i / (mass - sum_{j < i} p_j)."""
    p = log_p.exp().tolist()
    total = 0.0
    for order in itertools.permutations(range(len(p))):
        taken, probability = 0.0, 1.0
        for i in order:
            probability *= p[i] / (mass - taken)
            taken += p[i]
        total += probability
    return math.log(total)


@pytest.mark.parametrize("probabilities", [[0.3, 0.2, 0.1], [0.5, 0.45, 0.04], [1e-9, 2e-12, 3e-10, 1e-8],
                                           [0.25, 0.25, 0.25, 0.2499], [0.6, 1e-7, 0.3, 0.05]])
def test_leave_out_ratios_are_the_set_probabilities_summed_over_orderings(probabilities):
    log_p = torch.tensor(probabilities, dtype=torch.float64).log()
    log_R1, log_R2 = leave_out_log_ratios(log_p.unsqueeze(-1))
    k, P = len(log_p), log_set_probability(log_p)
    for s in range(k):
        others = [i for i in range(k) if i != s]
        P1 = log_set_probability(log_p[others], 1 - log_p[s].exp().item())
        assert log_R1[s, 0].item() == pytest.approx(P1 - P, rel=1e-9, abs=1e-12)
        assert log_R2[s, s, 0].item() == 0
        for t in others:
            rest = [i for i in others if i != t]
            P2 = log_set_probability(log_p[rest], 1 - log_p[[s, t]].exp().sum().item())
            assert log_R2[s, t, 0].item() == pytest.approx(P2 - P1, rel=1e-9, abs=1e-12)


def test_beam_search_finds_the_most_probable_values_and_draws_distinct_ones():
    vae = model(Categorical(D=2, K=3))
    log_probs = vae.posterior(X).base_dist.logits.detach()
    support = vae.latent.support()                                               # [9, D, K]
    log_q = vae.posterior(X).log_prob(support.unsqueeze(1)).detach()             # [9, B]
    classes, found = beam_search(log_probs, 4, stochastic=False)
    torch.testing.assert_close(found, log_q.sort(0, descending=True).values[:4])
    drawn, _ = beam_search(log_probs, 9)
    codes = drawn[..., 0] * 3 + drawn[..., 1]                                    # [9, B]
    assert (codes.sort(0).values == torch.arange(9).unsqueeze(-1)).all()        # all 9 values, each once


# --- the unordered set estimator and sum-and-sample ------------------------------------------------

@pytest.mark.parametrize("objective", [UnorderedSet(), SumAndSample(), SumAndSample("none")],
                         ids=["unordered_set", "sum_and_sample", "sum_and_sample-no-baseline"])
@pytest.mark.parametrize("S", [2, 3, 5])
def test_without_replacement_estimators_are_unbiased_for_the_elbo_gradient(objective, S):
    vae = model(Categorical(D=2, K=3))
    assert_unbiased(draws(objective, vae, S, n=DRAWS // 2), exact_gradient(vae))


@pytest.mark.parametrize("objective", [UnorderedSet(), SumAndSample()], ids=["unordered_set", "sum_and_sample"])
def test_drawing_every_value_gives_the_exact_gradient_and_elbo(objective):
    vae = model(Categorical(D=2, K=3))
    for _ in range(2):
        estimate = objective(vae, X, 9)
        torch.testing.assert_close(flat_grad(estimate.loss, encoder_and_decoder(vae)), exact_gradient(vae))
        torch.testing.assert_close(estimate.elbo, exact.elbo(vae, X).detach())


def test_the_built_in_baselines_lower_the_variance():
    vae = model(Categorical(D=2, K=3))
    with_baseline, without = (draws(SumAndSample(b), vae, 3, n=20).var(0).sum() for b in ("summed", "none"))
    assert with_baseline < without / 2


# --- refusals and host reads -----------------------------------------------------------------------

@pytest.mark.parametrize("objective,kind", [(ARMS(), "binary"), (UnorderedSet(), "discrete"), (SumAndSample(), "discrete")])
def test_each_is_refused_where_it_does_not_apply(objective, kind):
    assert objective.score_function and objective.problems(kind, 2) == []
    other = next(k for k in ("continuous", "discrete", "binary") if k != kind)
    assert objective.problems(other, 4) == [f"latent={other} is not supported (supported: {kind})"]
    assert objective.problems(kind, 1) == ["S=1 is below its least S, 2"]
    assert objective.problems(kind, 4, depth=2) == ["L=2 stochastic layers are not supported (L = 1 only)"]


@pytest.mark.parametrize("objective", [UnorderedSet(), SumAndSample()], ids=["unordered_set", "sum_and_sample"])
def test_more_draws_without_replacement_than_values_are_refused(objective):
    with pytest.raises(ConfigError, match=r"S=10 is not accepted: at most K\^D = 9"):
        objective(model(Categorical(D=2, K=3)), X, 10)


def test_an_unknown_sum_and_sample_baseline_is_refused():
    with pytest.raises(ConfigError, match="loss.baseline='loo' is not accepted: one of summed, none"):
        SumAndSample("loo")


@pytest.mark.parametrize("loss,latent,options", [("arms", "binary", {}), ("unordered_set", "discrete", {}),
                                                 ("sum_and_sample", "discrete", {}),
                                                 ("sum_and_sample", "discrete", {"baseline": "none"})])
def test_a_training_step_reads_nothing_back_from_the_device(monkeypatch, loss, latent, options):
    assert reads_in_training(monkeypatch, loss, latent, nonfinite_every=1000, **options).reads == []
