"""Pathwise ELBO, the vanilla VAE (Kingma & Welling 2014)."""

from torch.distributions import kl_divergence

from vaelab.objectives.base import Estimate, Objective


def analytic_kl_problems(analytic_kl, depth: int) -> list[str]:
    """Why `loss.analytic_kl` cannot serve `depth` stochastic layers: KL(q || p) of several has no closed form."""
    if analytic_kl and depth > 1:
        return [f"loss.analytic_kl=true needs KL(q || p) in closed form, which L={depth} stochastic layers lack; "
                "loss.analytic_kl=false trains them by the Monte Carlo mean of f"]
    return []


class ELBO(Objective):
    """grad ELBO = E_eps[grad f(mu + sigma * eps, x)]: reparameterised samples, one backward pass.

    `analytic_kl`: ELBO = E_q[log p(x|z)] - KL(q || p) with the KL in closed form;
    otherwise the Monte Carlo mean of f over the S samples.
    """

    latents = ("continuous",)
    hierarchical = True

    def __init__(self, analytic_kl: bool = True):
        super().__init__()
        self.analytic_kl = analytic_kl

    def problems(self, kind, S, depth=1):
        return super().problems(kind, S, depth) + analytic_kl_problems(self.analytic_kl, depth)

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        z = q.rsample((S,))
        if self.analytic_kl:
            kl = kl_divergence(q, vae.prior())
            elbo = vae.log_likelihood(x, z).mean(0) - kl
        else:
            elbo = vae.log_weight(x, z, q).mean(0)
        return Estimate(loss=-elbo.mean(), elbo=elbo.detach())
