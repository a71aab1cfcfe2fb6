"""The VAE: encoder q_phi(z|x), decoder p_theta(x|z), prior p(z), and the log importance weight

    f(z, x) = log p_theta(x|z) + log p(z) - log q_phi(z|x),

the one quantity every objective is built from.
"""

import math
from collections.abc import Sequence

import torch
from torch import nn

from vaelab.nets import mlp


class VAE(nn.Module):
    """An encoder/decoder pair around a latent space and a likelihood.

    `net(n_in, n_out)` builds both networks; the decoder mirrors the encoder's hidden sizes.
    """

    def __init__(self, latent: nn.Module, likelihood: nn.Module, event_shape: Sequence[int],
                 hidden: Sequence[int] = (512, 256), activation=nn.ReLU):
        super().__init__()
        self.latent, self.likelihood = latent, likelihood
        self.event_shape = tuple(event_shape)
        n = math.prod(self.event_shape)
        self.encoder = mlp(n, latent.param_size, hidden, activation)
        self.decoder = mlp(latent.size, likelihood.param_size(n), list(hidden)[::-1], activation)

    def compile_networks(self):
        """torch.compile the encoder and decoder, in place: checkpoints keep the keys of an uncompiled model."""
        for net in (self.encoder, self.decoder):
            net.compile()

    def posterior(self, x):
        """q(z|x) with batch shape [B]."""
        return self.latent.posterior(self.encoder(x.flatten(-len(self.event_shape))))

    def prior(self):
        return self.latent.prior()

    def decode(self, z):
        """Likelihood parameters for z of shape [..., latent]."""
        return self.decoder(self.latent.flatten(z))

    def log_likelihood(self, x, z):
        """log p(x|z), shape z's batch shape (e.g. [S, B])."""
        return self.likelihood.distribution(self.decode(z), self.event_shape).log_prob(x)

    def log_joint(self, x, z):
        """log p(x, z) = log p(x|z) + log p(z), shape z's batch shape (e.g. [S, B]): the one place it is computed."""
        return self.log_likelihood(x, z) + self.prior().log_prob(z)

    def log_weight(self, x, z, q):
        """f(z, x) = log p(x, z) - log q(z|x), shape [S, B]."""
        return self.log_joint(x, z) - q.log_prob(z)

    @torch.no_grad()
    def elbo(self, x, S: int = 1):
        """Monte Carlo ELBO per datum, mean over S exact (never relaxed) draws z ~ q(z|x), shape [B]."""
        q = self.posterior(x)
        return self.log_weight(x, q.sample((S,)), q).mean(0)
