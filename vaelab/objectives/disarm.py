"""ARM (Yin & Zhou 2019) and DisARM (Dong et al. 2020): antithetic gradients for binary latents."""

import torch

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective

VARIANTS = ("arm", "disarm")


class DisARM(Objective):
    """For q(z|x) = prod_d Bernoulli(sigmoid(a_d)), u ~ U(0,1)^D, b = 1[u < sigmoid(a)], b~ = 1[u > sigmoid(-a)]
    (both z ~ q, antithetic), the encoder gets d ELBO / d a from each pair:
    ARM: (f(b~) - f(b)) (u - 1/2); DisARM, its expectation given (b, b~):
    (f(b) - f(b~)) / 2 * (-1)^{b~} 1[b != b~] sigmoid(|a|).
    The decoder (and a learned prior) gets grad log p(x, z) at all S = 2 x pairs samples.
    """

    latents = ("binary",)
    score_function = True  # the encoder's signal is a difference of f at draws, as a score-function estimate's
    # not hierarchical: the per-layer form (Yin & Zhou 2019, sec. 2.3; Dong et al. 2020, sec. 5) is not built

    def __init__(self, variant: str = "disarm"):
        super().__init__()
        require(variant in VARIANTS, "loss.variant", variant, f"one of {', '.join(VARIANTS)}")
        self.variant = variant

    @property
    def min_samples(self):
        return 2

    def problems(self, kind, S, depth=1):
        found = super().problems(kind, S, depth)
        if S % 2:
            found.append(f"S={S} must be even (S counts antithetic pairs x 2)")
        return found

    def pair_gradients(self, logits, u, b, b_anti, f, f_anti):
        """d ELBO / d logits from each pair, shape [pairs, B, D]."""
        if self.variant == "arm":
            return (f_anti - f).unsqueeze(-1) * (u - 0.5)
        sign = 1 - 2 * b_anti
        return 0.5 * (f - f_anti).unsqueeze(-1) * sign * (b != b_anti) * torch.sigmoid(logits.abs())

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        logits = q.base_dist.logits
        u = torch.rand((S // 2, *logits.shape), dtype=logits.dtype, device=logits.device)
        b = (u < torch.sigmoid(logits.detach())).to(u.dtype)
        b_anti = (u > torch.sigmoid(-logits.detach())).to(u.dtype)
        z = torch.cat([b, b_anti])
        log_joint = vae.log_joint(x, z)
        f = (log_joint - q.log_prob(z)).detach()
        grad = self.pair_gradients(logits.detach(), u, b, b_anti, *f.chunk(2)).mean(0)
        terms = {"encoder": -(grad * logits).sum(-1).mean(), "decoder": -log_joint.mean()}
        return Estimate(loss=sum(terms.values()), elbo=f.mean(0), terms=terms)
