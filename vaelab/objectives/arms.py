"""ARMS (Dimitriev & Zhou 2021): leave-one-out REINFORCE over S antithetically coupled draws of binary latents."""

import torch
from torch.nn import functional as F

from vaelab.objectives.base import Estimate, Objective


class ARMS(Objective):
    """For q(z|x) = prod_d Bernoulli(p_d), p = sigmoid(a), the S draws of each coordinate are coupled through the
    Dirichlet copula: w ~ Dirichlet(1_S), u_s = (1 - w_s)^{S-1} (each U(0, 1), together negatively correlated), and
    the rarer value m = min(p, 1 - p) is taken where u_s < m, so that every b_s ~ q. The encoder gets

        d ELBO / d a = c(a) / (S - 1) sum_s (f(b_s) - mean_j f(b_j)) (b_s - p),
        c = p (1 - p) / (m - P(u_1 < m, u_2 < m)) = sigmoid(|a|) / (1 - (2 - m^{-1/(S-1)})_+^{S-1}),

    REINFORCE with leave-one-out baselines, debiased by c for the draws' correlation (c = 1 for independent draws).
    At S = 2 the copula is (u, 1 - u), c = sigmoid(|a|), and this is DisARM (Dong et al. 2020) on the same pair.
    The decoder (and a learned prior) gets grad log p(x, z) at all S draws.
    Dimitriev & Zhou, "ARMS: Antithetic-REINFORCE-Multi-Sample Gradient for Binary Variables", ICML 2021.
    """

    latents = ("binary",)
    hierarchical = False  # the paper trains one stochastic layer; no per-layer form is built
    score_function = True

    @property
    def min_samples(self):
        return 2

    @staticmethod
    def draw(logits, S):
        """S coupled draws b [S, ...] of q = Bernoulli(sigmoid(logits)), each exactly from q: with w ~ Dirichlet(1_S)
        (normalised exponentials), u_s < m is w_s > 1 - m^{1/(S-1)}."""
        exponentials = torch.empty((S, *logits.shape), dtype=logits.dtype, device=logits.device).exponential_()
        w = exponentials / exponentials.sum(0)
        rarer = w > 1 - torch.exp(-F.softplus(logits.abs()) / (S - 1))   # log m = -softplus(|a|)
        return (rarer != (logits >= 0)).to(logits.dtype)

    @staticmethod
    def logit_gradient(logits, b, f):
        """d ELBO / d logits [B, D] from the coupled draws b [S, B, D] and their f [S, B]."""
        S = len(b)
        coupling = (2 - torch.exp(F.softplus(logits.abs()) / (S - 1))).clamp(min=0) ** (S - 1)
        debias = torch.sigmoid(logits.abs()) / (1 - coupling)
        centred = (f - f.mean(0)).unsqueeze(-1)
        return debias / (S - 1) * (centred * (b - torch.sigmoid(logits))).sum(0)

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        logits = q.base_dist.logits
        z = self.draw(logits.detach(), S)
        log_joint = vae.log_joint(x, z)
        f = (log_joint - q.log_prob(z)).detach()
        grad = self.logit_gradient(logits.detach(), z, f)
        terms = {"encoder": -(grad * logits).sum(-1).mean(), "decoder": -log_joint.mean()}
        return Estimate(loss=sum(terms.values()), elbo=f.mean(0), terms=terms)
