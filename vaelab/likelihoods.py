"""Decoder likelihoods p(x|z): the decoder emits `param_size(n)` numbers for n pixels.

Each likelihood also declares, in `fits`, the data supports it is a density on ("binary": x in
{0, 1}, "unit": x in [0, 1], "real": x in R), mapped to a warning for a poor fit or None for a
good one; `check_fit` refuses a support that is missing.
"""

import warnings

import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli as _Bernoulli
from torch.distributions import ContinuousBernoulli as _ContinuousBernoulli
from torch.distributions import Independent, Normal
from torch.distributions.utils import broadcast_all

from vaelab.errors import require

UNBOUNDED_ON_BINARY = ("is a density on continuous values: on binary pixels it grows without bound as the "
                       "fit sharpens, so its log-likelihoods are not comparable with a discrete model's; "
                       "likelihood=bernoulli is the discrete one")


class Likelihood(nn.Module):
    """p(x|z) as a torch distribution whose event is the whole datum."""

    fits: dict[str, str | None] = {}

    def param_size(self, n: int) -> int:
        return n

    def distribution(self, params, event_shape):
        raise NotImplementedError

    def mean(self, params, event_shape):
        """E[x|z], e.g. for reconstructions and sample grids."""
        return self.distribution(params, event_shape).mean


def check_fit(likelihood: Likelihood, name: str, support: str, dataset: str):
    """ConfigError if `likelihood` is no density on the data's `support`; a warning if it fits poorly."""
    require(support in likelihood.fits, "likelihood", name,
            f"dataset={dataset} has {support} values; likelihoods for them: "
            "bernoulli (binary), continuous_bernoulli (binary or [0, 1]), gaussian (any real)")
    if likelihood.fits[support]:
        warnings.warn(f"likelihood={name} on dataset={dataset} ({support} values): {likelihood.fits[support]}",
                      stacklevel=2)


class IndependentBernoulli(Independent):
    """Independent Bernoulli pixels, log p(x|l) = -sum_i BCE(l_i, x_i), negated once per datum after the sum rather
    than per pixel as torch's Bernoulli does: two passes fewer over [S, B, pixels] a step, forward and backward."""

    def log_prob(self, value):
        logits, value = broadcast_all(self.base_dist.logits, value)
        pixels = tuple(range(-self.reinterpreted_batch_ndims, 0))
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(pixels)


class Bernoulli(Likelihood):
    """log p(x|z) = sum_i x_i log sigmoid(l_i) + (1 - x_i) log sigmoid(-l_i), for x in [0, 1]."""

    fits = {"binary": None,
            "unit": "the Bernoulli is no normalised density on gray values in (0, 1); "
                    "likelihood=continuous_bernoulli is (Loaiza-Ganem & Cunningham 2019)"}

    def distribution(self, params, event_shape):
        logits = params.unflatten(-1, event_shape)
        return IndependentBernoulli(_Bernoulli(logits=logits, validate_args=False), len(event_shape))


class ContinuousBernoulli(Likelihood):
    """p(x|z) = prod_i C(l_i) l_i^x_i (1 - l_i)^(1 - x_i) on x in [0, 1], with the normaliser C(l) =
    2 artanh(1 - 2l) / (1 - 2l) that the Bernoulli lacks (Loaiza-Ganem & Cunningham 2019)."""

    fits = {"unit": None, "binary": f"the continuous Bernoulli {UNBOUNDED_ON_BINARY}"}

    def distribution(self, params, event_shape):
        logits = params.unflatten(-1, event_shape)
        return Independent(_ContinuousBernoulli(logits=logits, validate_args=False), len(event_shape))


class Gaussian(Likelihood):
    """p(x|z) = prod_i N(x_i; mu_i, sigma_i^2); the decoder emits mu and a raw r per pixel, and

        log sigma^2 = min_log_var + softplus(r - min_log_var),

    a smooth floor: sigma never falls below exp(min_log_var / 2), so log p(x|z) stays bounded
    where a pixel is (nearly) constant across the data (default -9: sigma >= 0.011, about three
    gray levels of an 8-bit image in [0, 1]); far above the floor log sigma^2 is r itself.
    """

    fits = {"real": None, "unit": None, "binary": f"the Gaussian {UNBOUNDED_ON_BINARY}"}

    def __init__(self, min_log_var: float = -9.0):
        super().__init__()
        self.min_log_var = min_log_var

    def param_size(self, n: int) -> int:
        return 2 * n

    def log_variance(self, raw):
        return self.min_log_var + F.softplus(raw - self.min_log_var)

    def distribution(self, params, event_shape):
        mu, raw = params.unflatten(-1, (2, *event_shape)).unbind(-len(event_shape) - 1)
        scale = (0.5 * self.log_variance(raw)).exp()
        return Independent(Normal(mu, scale, validate_args=False), len(event_shape))
