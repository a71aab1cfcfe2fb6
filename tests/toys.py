"""Tiny models whose exact gradients are computable, and the Monte Carlo checks against them."""

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

from vaelab.latents import Categorical, Gaussian
from vaelab.likelihoods import Bernoulli
from vaelab.model import VAE

X = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)


def tiny_vae(latent=None, seed=0):
    """A 4-pixel Bernoulli VAE with a small discrete latent (default D=2, K=3: 9 values of z), in float64."""
    torch.manual_seed(seed)
    vae = VAE(latent or Categorical(D=2, K=3), Bernoulli(), event_shape=(4,), hidden=(5,), activation=nn.Tanh)
    return vae.double()


class GaussianToy(nn.Module):
    """q(z|x) = N(mu, sigma^2), p(z) = N(0, 1), p(x|z) = N(x; z, 1) in one dimension, with

    ELBO = -log(2 pi)/2 - ((x - mu)^2 + sigma^2)/2 - KL(N(mu, sigma^2) || N(0, 1)) in closed form.
    """

    latent = Gaussian(1)

    def __init__(self, mu=0.3, log_sigma=-0.4):
        super().__init__()
        self.encoder = nn.ParameterDict({"mu": nn.Parameter(torch.tensor([mu])),
                                         "log_sigma": nn.Parameter(torch.tensor([log_sigma]))})
        self.decoder = nn.Module()

    def posterior(self, x):
        mu, sigma = self.encoder["mu"].expand(len(x), 1), self.encoder["log_sigma"].exp().expand(len(x), 1)
        return Independent(Normal(mu, sigma), 1)

    def prior(self):
        return Independent(Normal(torch.zeros(1), torch.ones(1)), 1)

    def log_likelihood(self, x, z):
        return Normal(z, 1.0).log_prob(x).sum(-1)

    def log_joint(self, x, z):
        return self.log_likelihood(x, z) + self.prior().log_prob(z)

    def log_weight(self, x, z, q):
        return self.log_joint(x, z) - q.log_prob(z)

    def exact_elbo(self, x):
        q = self.posterior(x)
        mu, var = q.mean, q.variance
        return (-0.5 * math.log(2 * math.pi) - 0.5 * ((x - mu) ** 2 + var) - kl_divergence(q, self.prior()).unsqueeze(-1)).sum(-1)

    def quadrature_iwae(self, x, S, nodes=40):
        """E[log (1/S) sum_s w_s] over z_s = mu + sigma eps_s, eps ~ N(0, I_S), by Gauss-Hermite quadrature
        on an S-dimensional grid of eps: deterministic and differentiable in mu and sigma, shape [B]."""
        eps, weights = (torch.tensor(a, dtype=x.dtype) for a in np.polynomial.hermite_e.hermegauss(nodes))
        grid = torch.cartesian_prod(*[eps] * S).reshape(-1, S).T        # [S, nodes^S]
        mass = torch.cartesian_prod(*[weights / math.sqrt(2 * math.pi)] * S).reshape(-1, S).prod(1)
        q = self.posterior(x)
        z = q.mean + q.stddev * grid[..., None, None]                    # [S, nodes^S, B, 1]
        bound = torch.logsumexp(self.log_weight(x, z, q), 0) - math.log(S)
        return (mass.unsqueeze(-1) * bound).sum(0)

    def quadrature_variance(self, x, nodes=40):
        """Var_r[f] under r = q(z|x) held fixed, z = mu + sigma eps with mu, sigma detached, by Gauss-Hermite
        quadrature over eps: the expectation of the variance loss with its posterior reference, shape [B]."""
        eps, weights = (torch.tensor(a, dtype=x.dtype) for a in np.polynomial.hermite_e.hermegauss(nodes))
        mass = (weights / math.sqrt(2 * math.pi))[:, None]
        q = self.posterior(x)
        f = self.log_weight(x, (q.mean + q.stddev * eps[:, None, None]).detach(), q)   # [nodes, B]
        return (mass * f**2).sum(0) - (mass * f).sum(0) ** 2


def total_variance(draws):
    """Per-draw gradient variance summed over coordinates."""
    return draws.var(0).sum().item()


def discrepancy(draws, exact):
    """Largest |mean - exact| in standard errors of the mean, over coordinates."""
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    return ((mean - exact).abs() / (se + 1e-9)).max().item()


def assert_unbiased(draws, exact, z=5.0):
    """Every coordinate of the mean draw lies within z standard errors of the exact gradient."""
    gap = discrepancy(draws, exact)
    assert gap < z, f"mean gradient is {gap:.1f} standard errors from the exact gradient"
