"""Importance-sampled log-likelihood (Burda et al. 2016, eq. 14):

    log p(x) ~= logsumexp_k f(z_k, x) - log k,   z_k ~ q(z|x) exact draws (one-hot / 0-1, never relaxed),

streamed over chunks of samples so memory is bounded for any k, under a fixed seed so the number repeats.
"""

import math

import torch

from vaelab.errors import require
from vaelab.rng import seeded


@torch.no_grad()
def log_likelihood(vae, x, k: int = 1000, chunk: int = 100, seed: int = 0):
    """Estimate of log p(x) per datum, shape [B]: k draws from q, `chunk` at a time, logsumexp accumulated."""
    require(k >= 1, "nll_samples", k, "a positive number of importance samples")
    require(chunk >= 1, "nll_chunk", chunk, "a positive chunk size")
    q = vae.posterior(x)
    total = x.new_full(x.shape[:1], -math.inf)
    with seeded(seed, x.device):
        for start in range(0, k, chunk):
            z = q.sample((min(chunk, k - start),))
            total = torch.logaddexp(total, torch.logsumexp(vae.log_weight(x, z, q), 0))
    return total - math.log(k)
