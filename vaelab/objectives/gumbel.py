"""Concrete / Gumbel-softmax relaxation (Jang et al. 2017; Maddison et al. 2017)."""

import torch
from torch.distributions import kl_divergence

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective
from vaelab.objectives.elbo import analytic_kl_problems


class GumbelSoftmax(Objective):
    """grad E_g[log p(x | z_tau)] - grad KL, z_tau = softmax((logits + g) / tau), g ~ Gumbel: pathwise through
    the relaxed sample, biased for the ELBO gradient.

    tau = max(tau_min, tau0 exp(-rate * step)); `step` counts training steps and advances with the temperature
    in `advance`, and both are buffers, so a resumed run continues the schedule. `straight_through`: the decoder sees the
    one-hot (binary: rounded) z forward, the relaxed z backward.

    `analytic_kl=True`: the exact KL(q || p) of the discrete distributions; the only bias is then the
    reconstruction term's, which vanishes as tau -> 0 while the variance grows. One stochastic layer only.
    `analytic_kl=False`: log q_tau(z) - log p_tau(z), the relaxed posterior and prior at the one temperature tau;
    with several layers (`vaelab.hierarchical`), each layer relaxed given the relaxed layer drawn before it.
    `analytic_kl=None` (default): True for one layer, False for several.
    For one layer, both relaxed variables are the same invertible map of the perturbed logits' differences
    d_k = (logits + g)_k - (logits + g)_K, so this KL is that of d's laws under q and p: the same at every tau
    (draw by draw, for the same g) and, by data processing (the argmax is a function of d), at least the
    discrete KL. Its bias does not fall as tau falls. For several layers it is not the same at every tau: each
    layer's logits under q and p are functions of the relaxed layer drawn before it, which moves with tau, so the
    ratio moves draw by draw and its mean grows as tau falls. A prior temperature of its own, as Maddison et al. use,
    would not change that: the relaxed KL then depends on the temperatures only through tau / prior_tau, and
    grows without bound when tau alone anneals.
    """

    latents = ("discrete", "binary")
    hierarchical = True
    biased = True

    def __init__(self, tau0: float = 1.0, tau_min: float = 0.5, rate: float = 1e-4,
                 straight_through: bool = False, analytic_kl: bool | None = None):
        super().__init__()
        require(tau0 > 0, "loss.tau0", tau0, "a positive temperature")
        require(0 < tau_min <= tau0, "loss.tau_min", tau_min, f"a temperature in (0, tau0={tau0}]")
        require(rate >= 0, "loss.rate", rate, "a non-negative annealing rate")
        self.tau0, self.tau_min, self.rate = tau0, tau_min, rate
        self.straight_through, self.analytic_kl = straight_through, analytic_kl
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("temperature", torch.tensor(tau0))

    def problems(self, kind, S, depth=1):
        return super().problems(kind, S, depth) + analytic_kl_problems(self.analytic_kl, depth)

    def advance(self, estimate):
        """Count the step and set the next step's temperature (on the device: no host synchronisation)."""
        self.step += 1
        self.temperature.copy_((self.tau0 * torch.exp(-self.rate * self.step)).clamp(min=self.tau_min))

    def forward(self, vae, x, S):
        latent, q, prior = vae.latent, vae.posterior(x), vae.prior()
        relaxed_q = latent.relaxed(q, self.temperature)
        y = relaxed_q.base_dist.rsample((S,))
        z = relaxed_q.transforms[0](y)
        hard = latent.hard(z)
        decoded = hard + z - z.detach() if self.straight_through else z
        log_likelihood = vae.log_likelihood(x, decoded)
        if self.analytic_kl or (self.analytic_kl is None and latent.depth == 1):
            bound = log_likelihood.mean(0) - kl_divergence(q, prior.expand(q.batch_shape))
        else:
            relaxed_prior = latent.relaxed(prior, self.temperature)
            bound = (log_likelihood + relaxed_prior.base_dist.log_prob(y) - relaxed_q.base_dist.log_prob(y)).mean(0)
        with torch.no_grad():
            elbo = vae.log_weight(x, q.sample((S,)), q).mean(0)   # f over draws of q itself, not of the relaxation
        return Estimate(loss=-bound.mean(), elbo=elbo, metrics={"temperature": self.temperature.clone()})
