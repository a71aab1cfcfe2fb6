"""Posterior health: how much the latent code is used.

KL(q || p) per datum and the reconstruction term E_q[log p(x|z)] (ELBO = recon - KL); for the discrete and
binary variables the mean entropy H[q(z_d|x)] per variable (given the layer below, for several stochastic layers;
a continuous layer among them has none); for continuous latents of one layer the active units,
#{i : Cov_x(E_q[z_i|x]) > 0.01} (Burda et al. 2016).
"""

import torch
from torch.distributions import kl_divergence as closed_form_kl
from torchmetrics import Metric


def kl_divergence(q, p, z):
    """KL(q || p) per datum: closed form where torch.distributions has one (p expanded to q's batch shape:
    torch's Bernoulli KL does not broadcast), else mean over draws z of log q - log p."""
    try:
        return closed_form_kl(q, p.expand(q.batch_shape))
    except NotImplementedError:
        return (q.log_prob(z) - p.log_prob(z)).mean(0)


@torch.no_grad()
def posterior_health(vae, x, S: int = 1) -> dict[str, torch.Tensor]:
    """Batch means of kl, recon and (discrete kinds) entropy per variable, from S exact draws z ~ q(z|x)."""
    q = vae.posterior(x)
    z = q.sample((S,))
    found = {"kl": kl_divergence(q, vae.prior(), z).mean(), "recon": vae.log_likelihood(x, z).mean()}
    layers = [dist for layer, dist in zip(layer_latents(vae.latent), q.layers(z) if vae.latent.depth > 1 else [q])
              if layer.kind != "continuous"]
    if layers:
        found["entropy"] = mean_entropy(layers)
    return found


def layer_latents(latent) -> list:
    """The single-layer latent of each stochastic layer, z1 first: the latent's `layers`, or the latent itself."""
    return list(getattr(latent, "layers", [latent]))


def mean_entropy(layers):
    """The entropy of each variable's distribution, averaged over the data and draws, then over the variables of
    every layer: H[q(z_d|x)], or for several stochastic layers H[q(z_kd|z_{k-1})] at the draws."""
    return torch.cat([layer.base_dist.entropy().flatten(0, -2).mean(0) for layer in layers]).mean()


class ActiveUnits(Metric):
    """Count of units i with Var_x(E_q[z_i|x]) > threshold over all data seen, from running sums (no host sync)."""

    full_state_update = False

    def __init__(self, size: int, threshold: float = 0.01):
        super().__init__()
        self.threshold = threshold
        self.add_state("total", torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("squares", torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, mean: torch.Tensor):
        mean = mean.detach().double()
        self.total += mean.sum(0)
        self.squares += (mean**2).sum(0)
        self.count += len(mean)

    def compute(self):
        average = self.total / self.count
        return (self.squares / self.count - average**2 > self.threshold).sum().float()
