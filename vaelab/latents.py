"""Latent spaces: how encoder outputs become q(z|x), the prior p(z), and the decoder's view of z.

Each latent is an `nn.Module` (so a learned prior is a parameter of the model) with
- `kind`: "continuous", "discrete" or "binary", what estimators declare support for;
- `depth`: the number of stochastic layers (1 here; several in `vaelab.hierarchical`);
- `param_size`: how many numbers the encoder emits per datum;
- `posterior(params)` and `prior()`: torch.distributions whose event is the whole latent;
- `flatten(z)`: z as the decoder's input vector;
- `support()` (discrete kinds): every value of z, for exact enumeration on tiny models;
- `relaxed(dist, temperature)` and `hard(z)` (discrete kinds): the Concrete relaxation of a
  posterior or prior, over log-space values y mapped to z by its `relaxation` transform, and the support
  value a relaxed z rounds to (for straight-through);
- `tempered(dist, temperature)`: a posterior or prior flattened (temperature > 1) or sharpened (< 1),
  for reference distributions of the variance loss.
"""

import itertools

import torch
from torch import nn
from torch.distributions import Bernoulli as _Bernoulli
from torch.distributions import Independent, Normal, OneHotCategorical, TransformedDistribution, register_kl
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical
from torch.distributions.transforms import ExpTransform, SigmoidTransform

from vaelab.errors import require


def one_hot_argmax(scores):
    """The one-hot vector at the largest entry of the last axis, by a scatter (F.one_hot reads its input's range
    back to the host to check it)."""
    return torch.zeros_like(scores).scatter_(-1, scores.argmax(-1, keepdim=True), 1.0)


class SyncFreeNormal(Normal):
    """N(loc, scale) sampled as loc + scale * eps, eps ~ N(0, I): torch.normal reads min(scale) >= 0 back
    to the host. Drawn in two ops to torch's four (randn, addcmul), and one backward op to its two."""

    def rsample(self, sample_shape=torch.Size()):
        eps = torch.randn(self._extended_shape(sample_shape), dtype=self.loc.dtype, device=self.loc.device)
        return torch.addcmul(self.loc, eps, self.scale)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)


class StandardNormal(SyncFreeNormal):
    """N(0, 1), built from zeros and ones: its own type, so that the KL from a Normal takes the closed form below."""


@register_kl(Normal, StandardNormal)
def kl_from_standard_normal(p, q):
    """KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1) / 2 - log s: the general Normal-Normal form with
    mu_q = 0 and s_q = 1 substituted, 7 operations forward against its 10, with no divisions."""
    return 0.5 * (p.loc.pow(2) + p.scale.pow(2) - 1) - p.scale.log()


class SyncFreeOneHotCategorical(OneHotCategorical):
    """Cat(softmax(logits)) sampled by Gumbel-max, one_hot(argmax(logits + G)), G ~ Gumbel(0, 1):
    torch.multinomial reads the probabilities back to the host to check them."""

    def sample(self, sample_shape=torch.Size()):
        logits = self.logits.expand(self._extended_shape(sample_shape))
        return one_hot_argmax(logits - torch.empty_like(logits).exponential_().log())


class Gaussian(nn.Module):
    """z in R^D; q(z|x) = N(mu, diag sigma^2) from (mu, log sigma^2); p(z) = N(0, I)."""

    kind = "continuous"
    depth = 1

    def __init__(self, D: int = 20):
        super().__init__()
        require(D >= 1, "latent.D", D, "a positive latent size")
        self.D = D
        self.param_size = 2 * D
        self.register_buffer("_zero", torch.zeros(D))
        self.register_buffer("_one", torch.ones(D), persistent=False)  # a constant, not state: left out of checkpoints

    def posterior(self, params):
        mu, logvar = params.chunk(2, dim=-1)
        return Independent(SyncFreeNormal(mu, torch.exp(0.5 * logvar)), 1)

    def prior(self):
        return Independent(StandardNormal(self._zero, self._one), 1)

    def flatten(self, z):
        return z

    def tempered(self, dist, temperature):
        """N(mu, (temperature * sigma)^2): the scale multiplied by the temperature."""
        return Independent(SyncFreeNormal(dist.base_dist.loc, dist.base_dist.scale * temperature), 1)

    @property
    def size(self):
        return self.D


class Categorical(nn.Module):
    """z = D one-hot vectors of K classes; q(z|x) = prod_d Cat(softmax(l_d)); p(z) uniform or learned."""

    kind = "discrete"
    depth = 1
    relaxation = ExpTransform()   # a relaxed z from its log-space value

    def __init__(self, D: int = 20, K: int = 10, learn_prior: bool = False):
        super().__init__()
        require(D >= 1, "latent.D", D, "a positive number of categorical variables")
        require(K >= 2, "latent.K", K, "at least 2 classes per variable")
        self.D, self.K = D, K
        self.param_size = D * K
        logits = torch.zeros(D, K)
        if learn_prior:
            self.prior_logits = nn.Parameter(logits)
        else:
            self.register_buffer("prior_logits", logits)

    def posterior(self, params):
        return Independent(SyncFreeOneHotCategorical(logits=params.unflatten(-1, (self.D, self.K))), 1)

    def prior(self):
        return Independent(SyncFreeOneHotCategorical(logits=self.prior_logits), 1)

    def flatten(self, z):
        return z.flatten(-2)

    def relaxed(self, dist, temperature):
        """Concrete(softmax(logits), temperature) per variable (Maddison et al. 2017; Jang et al. 2017),
        as exp of its log-space version, whose densities stay finite at low temperature."""
        base = ExpRelaxedCategorical(temperature, logits=dist.base_dist.logits)
        return TransformedDistribution(Independent(base, 1), [self.relaxation])

    def tempered(self, dist, temperature):
        """Cat(softmax(logits / temperature)) per variable."""
        return Independent(SyncFreeOneHotCategorical(logits=dist.base_dist.logits / temperature), 1)

    def hard(self, z):
        """The one-hot vector at each variable's largest entry."""
        return one_hot_argmax(z)

    def support(self):
        """All K^D values of z, shape [K^D, D, K]."""
        eye = torch.eye(self.K, dtype=self.prior_logits.dtype, device=self.prior_logits.device)
        return torch.stack([eye[list(c)] for c in itertools.product(range(self.K), repeat=self.D)])

    @property
    def size(self):
        return self.D * self.K


class Binary(nn.Module):
    """z in {0,1}^D; q(z|x) = prod_d Bernoulli(sigmoid(l_d)); p(z) = Bernoulli(1/2)^D or learned."""

    kind = "binary"
    depth = 1
    relaxation = SigmoidTransform()   # a relaxed z from its logit

    def __init__(self, D: int = 200, learn_prior: bool = False):
        super().__init__()
        require(D >= 1, "latent.D", D, "a positive number of binary variables")
        self.D = D
        self.param_size = D
        logits = torch.zeros(D)
        if learn_prior:
            self.prior_logits = nn.Parameter(logits)
        else:
            self.register_buffer("prior_logits", logits)

    def posterior(self, params):
        return Independent(_Bernoulli(logits=params), 1)

    def prior(self):
        return Independent(_Bernoulli(logits=self.prior_logits), 1)

    def flatten(self, z):
        return z

    def relaxed(self, dist, temperature):
        """Binary Concrete (relaxed Bernoulli) per variable, as sigmoid of its logistic logit-space version."""
        base = LogitRelaxedBernoulli(temperature, logits=dist.base_dist.logits)
        return TransformedDistribution(Independent(base, 1), [self.relaxation])

    def tempered(self, dist, temperature):
        """Bernoulli(sigmoid(logits / temperature)) per variable."""
        return Independent(_Bernoulli(logits=dist.base_dist.logits / temperature), 1)

    def hard(self, z):
        """1 where z > 1/2, else 0."""
        return (z > 0.5).to(z.dtype)

    def support(self):
        """All 2^D values of z, shape [2^D, D]."""
        values = torch.tensor([0.0, 1.0], dtype=self.prior_logits.dtype, device=self.prior_logits.device)
        return torch.cartesian_prod(*[values] * self.D).reshape(-1, self.D)

    @property
    def size(self):
        return self.D
