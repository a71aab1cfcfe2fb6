"""The VAE: encoder q_phi(z|x), decoder p_theta(x|z), prior p(z), and the log importance weight

    f(z, x) = log p_theta(x|z) + log p(z) - log q_phi(z|x),

the one quantity every objective is built from.
"""

import math
from collections.abc import Sequence

import torch
from torch import nn

from vaelab.errors import require
from vaelab.likelihoods import Bernoulli
from vaelab.nets import mlp

CENTRE = ("none", "mean", "sign")
BIAS_CLIP = (1e-3, 0.999)  # the DisARM code clips the pixel means so (google-research/disarm/binary, initialize_with_bias)


class VAE(nn.Module):
    """An encoder/decoder pair around a latent space and a likelihood.

    `net(n_in, n_out)` builds both networks; the decoder mirrors the encoder's hidden sizes.
    Input centring and output bias, as in the DisARM and ARM codes (google-research/disarm/binary, flags
    demean_input and initialize_with_bias; github.com/mingzhang-yin/ARM-gradient, linear/b_mnist_arm.py), so that
    no input has a constant offset for the first layer's bias to absorb:
    `centre`: "none"; "mean" (DisARM), the encoder sees x - E[x] with E[x] the training set's `pixel_means`;
    "sign" (ARM), the encoder sees 2x - 1. Either way the decoder sees 2z - 1 (binary z, one layer).
    `bias_from_data`: the decoder's output bias starts at logit(clip(E[x], 0.001, 0.999)), the Bernoulli decoder
    that ignores z and fits each pixel's mean.
    """

    def __init__(self, latent: nn.Module, likelihood: nn.Module, event_shape: Sequence[int],
                 hidden: Sequence[int] = (512, 256), activation=nn.ReLU, centre: str = "none",
                 bias_from_data: bool = False, pixel_means: torch.Tensor | None = None):
        super().__init__()
        require(centre in CENTRE, "net.centre", centre, f"one of {', '.join(CENTRE)}")
        require(bias_from_data in (True, False), "net.bias_from_data", bias_from_data, "true or false")
        require(centre == "none" or (latent.kind == "binary" and latent.depth == 1), "net.centre", centre,
                "none unless the latent is one layer of binary units (the decoder's input is centred as 2z - 1)")
        require(not bias_from_data or isinstance(likelihood, Bernoulli), "net.bias_from_data", bias_from_data,
                "false unless the likelihood is bernoulli (the bias is the logit of the pixel means)")
        self.latent, self.likelihood = latent, likelihood
        self.event_shape = tuple(event_shape)
        n = math.prod(self.event_shape)
        self.encoder = mlp(n, latent.param_size, hidden, activation)
        self.decoder = mlp(latent.size, likelihood.param_size(n), list(hidden)[::-1], activation)
        self.centre = centre
        if centre == "mean" or bias_from_data:
            require(pixel_means is not None, "pixel_means", None, "the training set's pixel means")
            pixel_means = pixel_means.flatten().float()
        if centre == "mean":
            self.register_buffer("input_mean", pixel_means.clone())
        if bias_from_data:
            with torch.no_grad():
                self.decoder[-1].bias.copy_(torch.logit(pixel_means.clamp(*BIAS_CLIP)))

    def compile_networks(self):
        """torch.compile the encoder and decoder, in place: checkpoints keep the keys of an uncompiled model."""
        for net in (self.encoder, self.decoder):
            net.compile()

    def posterior(self, x):
        """q(z|x) with batch shape [B]."""
        x = x.flatten(-len(self.event_shape))
        return self.latent.posterior(self.encoder(self.centred(x)))

    def centred(self, x):
        """The encoder's input: x, x - E[x] or 2x - 1 (`centre`), x flattened."""
        if self.centre == "mean":
            return x - self.input_mean
        return 2 * x - 1 if self.centre == "sign" else x

    def prior(self):
        return self.latent.prior()

    def prior_parameters(self) -> list[nn.Parameter]:
        """The learned logits of the prior p(z) (latent.learn_prior=true), or none."""
        return [p for name, p in self.latent.named_parameters() if name.endswith("prior_logits")]

    def decode(self, z):
        """Likelihood parameters for z of shape [..., latent]."""
        return self.decoder(self.latent.flatten(z) if self.centre == "none" else 2 * z - 1)

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
