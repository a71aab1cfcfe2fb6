"""Exact quantities by enumerating every z of a small discrete or binary latent.

For tests and toy studies: with N = |support| values of z, each is a sum of N terms and
differentiable, so autograd gives the exact gradients that estimators must match.
"""

import math

import torch


def log_weights(vae, x):
    """f(z, x) for every z, and log q(z|x): two tensors of shape [N, B]."""
    z = vae.latent.support().unsqueeze(1)
    q = vae.posterior(x)
    return vae.log_weight(x, z, q), q.log_prob(z)


def elbo(vae, x):
    """ELBO(x) = sum_z q(z|x) f(z, x), shape [B]."""
    f, log_q = log_weights(vae, x)
    return (log_q.exp() * f).sum(0)


def log_marginal(vae, x):
    """log p(x) = log sum_z p(x|z) p(z), shape [B]."""
    f, log_q = log_weights(vae, x)
    return torch.logsumexp(f + log_q, 0)


def variance(vae, x):
    """Var_r[f] = E_r[f^2] - E_r[f]^2 under r = q(z|x) held fixed (detached), shape [B]:
    the expectation of the variance loss, whose gradient its estimates must match."""
    f, log_q = log_weights(vae, x)
    r = log_q.detach().exp()
    return (r * f**2).sum(0) - (r * f).sum(0) ** 2


def iwae(vae, x, S: int):
    """The importance-weighted bound E_{z_1..S ~ q}[log (1/S) sum_s w_s], shape [B], by enumerating
    all N^S tuples of z weighted by prod_s q(z_s|x)."""
    f, log_q = log_weights(vae, x)
    tuples = torch.cartesian_prod(*[torch.arange(len(f), device=f.device)] * S).reshape(-1, S)
    bound = torch.logsumexp(f[tuples], 1) - math.log(S)
    return (log_q[tuples].sum(1).exp() * bound).sum(0)
