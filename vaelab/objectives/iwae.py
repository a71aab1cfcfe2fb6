"""The importance-weighted bound with pathwise samples (Burda et al. 2015), optionally with
doubly-reparameterised encoder gradients (DReG, Tucker et al. 2018)."""

import math

import torch

from vaelab.objectives.base import Estimate, Objective


def log_mean_exp(f):
    """log (1/S) sum_s exp f_s over the first axis."""
    return torch.logsumexp(f, 0) - math.log(f.shape[0])


class IWAE(Objective):
    """L_S = E[log (1/S) sum_s w_s], w_s = exp f(z_s, x), z_s = mu + sigma eps_s;
    grad L_S = E[sum_s w~_s grad f(z_s, x)] with w~_s = w_s / sum_j w_j.

    `dreg`: the encoder gets E[sum_s w~_s^2 (d f / d z_s)(d z_s / d phi)] with q's parameters held
    fixed in f, which has the same mean and lower variance; the decoder keeps the IWAE gradient.
    """

    latents = ("continuous",)
    hierarchical = True
    encoder_objective = decoder_objective = "iwae"

    def __init__(self, dreg: bool = False):
        super().__init__()
        self.dreg = dreg

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        z = q.rsample((S,))
        if not self.dreg:
            f = vae.log_weight(x, z, q)
            bound = log_mean_exp(f)
            return Estimate(loss=-bound.mean(), elbo=f.detach().mean(0), metrics={"iwae": bound.detach().mean()})
        return self.doubly_reparameterised(vae, x, q, z)

    @staticmethod
    def doubly_reparameterised(vae, x, q, z):
        """Encoder term sum_s w~_s^2 <d f/d z_s, z_s> with d f/d z_s taken at fixed q and detached, so its
        gradient flows into phi through z_s alone; decoder term -log (1/S) sum_s w_s at z detached."""
        z_fixed = z.detach().requires_grad_()
        log_joint, log_q = vae.log_joint(x, z_fixed), q.log_prob(z_fixed)
        f = log_joint - log_q
        (df_dz,) = torch.autograd.grad(f.sum(), z_fixed, retain_graph=True)
        w = torch.softmax(f.detach(), 0)
        path = (df_dz * z).flatten(2).sum(-1)
        terms = {"encoder": -(w**2 * path).sum(0).mean(), "decoder": -log_mean_exp(log_joint - log_q.detach()).mean()}
        metrics = {"iwae": log_mean_exp(f.detach()).mean()}
        return Estimate(loss=sum(terms.values()), elbo=f.detach().mean(0), metrics=metrics, terms=terms)
