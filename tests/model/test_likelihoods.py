"""Decoder likelihoods against their closed forms, and the data-fit check."""

import math
import warnings

import pytest
import torch
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import Independent
from torch.nn import functional as F

from vaelab.errors import ConfigError
from vaelab.likelihoods import Bernoulli, ContinuousBernoulli, Gaussian, check_fit


def test_gaussian_log_density_is_the_closed_form_with_a_floored_log_variance():
    torch.manual_seed(0)
    likelihood = Gaussian(min_log_var=-4.0)
    mu, raw = torch.randn(5, 3, 2), torch.tensor([-50.0, -4.0, 0.0, 3.0, 30.0]).view(5, 1, 1).expand(5, 3, 2)
    params = torch.cat([mu.flatten(1), raw.flatten(1)], dim=1)
    x = torch.randn(5, 3, 2)
    log_var = -4.0 + torch.log1p(torch.exp(raw + 4.0))
    expected = (-0.5 * (math.log(2 * math.pi) + log_var + (x - mu) ** 2 / log_var.exp())).sum((1, 2))
    assert likelihood.param_size(6) == 12
    torch.testing.assert_close(likelihood.distribution(params, (3, 2)).log_prob(x), expected)
    floor = likelihood.log_variance(raw)
    assert torch.all(floor >= -4.0)
    torch.testing.assert_close(floor[0], torch.full((3, 2), -4.0))     # far below: at the floor
    torch.testing.assert_close(floor[-1], raw[-1])                      # far above: r itself
    torch.testing.assert_close(likelihood.mean(params, (3, 2)), mu)


def test_gaussian_log_likelihood_stays_bounded_on_a_constant_pixel():
    """Without the floor, sigma -> 0 on x = mu sends log p(x|z) to +infinity."""
    likelihood = Gaussian(min_log_var=-9.0)
    params = torch.tensor([[0.5, -1e4]])
    bound = -0.5 * (math.log(2 * math.pi) - 9.0)
    assert likelihood.distribution(params, (1,)).log_prob(torch.tensor([[0.5]])).item() == pytest.approx(bound, abs=1e-4)


@pytest.mark.parametrize("logit", [-6.0, -1.0, -1e-4, 0.0, 2.5, 8.0])
def test_continuous_bernoulli_is_a_normalised_density_on_the_unit_interval(logit):
    x = torch.linspace(0, 1, 20001, dtype=torch.float64).unsqueeze(-1)
    params = torch.full((1,), logit, dtype=torch.float64)
    density = ContinuousBernoulli().distribution(params, (1,)).log_prob(x).exp()
    assert torch.trapezoid(density, x.squeeze(-1)).item() == pytest.approx(1.0, abs=1e-6)
    bernoulli = Bernoulli().distribution(params, (1,)).log_prob(x).exp()   # what the normaliser fixes
    assert torch.trapezoid(bernoulli, x.squeeze(-1)).item() < 1 - 1e-3


def test_continuous_bernoulli_mean_is_its_own_not_the_sigmoid():
    logit = torch.tensor([2.0], dtype=torch.float64)
    lam = torch.sigmoid(logit)
    expected = lam / (2 * lam - 1) + 1 / (2 * torch.atanh(1 - 2 * lam))   # Loaiza-Ganem & Cunningham, eq. 6
    torch.testing.assert_close(ContinuousBernoulli().mean(logit, (1,)), expected)


def test_a_likelihood_that_is_no_density_on_the_data_is_refused_and_a_poor_fit_warned():
    with pytest.raises(ConfigError, match=r"likelihood='bernoulli'.*dataset=linear_gaussian.*real.*gaussian"):
        check_fit(Bernoulli(), "bernoulli", "real", "linear_gaussian")
    with pytest.raises(ConfigError, match="continuous_bernoulli"):
        check_fit(ContinuousBernoulli(), "continuous_bernoulli", "real", "linear_gaussian")
    with pytest.warns(UserWarning, match="gaussian on dataset=binarized_mnist"):
        check_fit(Gaussian(), "gaussian", "binary", "binarized_mnist")
    with pytest.warns(UserWarning, match="continuous_bernoulli"):
        check_fit(Bernoulli(), "bernoulli", "unit", "mnist")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for likelihood, support in [(Bernoulli(), "binary"), (ContinuousBernoulli(), "unit"),
                                    (Gaussian(), "unit"), (Gaussian(), "real")]:
            check_fit(likelihood, "it", support, "d")


def test_bernoulli_log_likelihood_is_torchs_summed_over_pixels_with_the_same_gradient():
    """IndependentBernoulli negates after the sum; values and gradients are torch's Bernoulli's, broadcast over S."""
    torch.manual_seed(0)
    logits = (3 * torch.randn(4, 5, 6)).requires_grad_()   # [S, B, pixels]
    x = torch.rand(5, 2, 3).lt(0.4).float()                # [B, 2, 3]
    found = Bernoulli().distribution(logits, (2, 3)).log_prob(x)
    expected = Independent(TorchBernoulli(logits=logits.unflatten(-1, (2, 3))), 2).log_prob(x)
    closed = (x * F.logsigmoid(logits.unflatten(-1, (2, 3))) + (1 - x) * F.logsigmoid(-logits.unflatten(-1, (2, 3))))
    torch.testing.assert_close(found, expected)
    torch.testing.assert_close(found, closed.sum((-1, -2)))
    assert found.shape == (4, 5)
    weights = torch.randn(4, 5)
    torch.testing.assert_close(torch.autograd.grad((found * weights).sum(), logits)[0],
                               torch.autograd.grad((expected * weights).sum(), logits)[0])
