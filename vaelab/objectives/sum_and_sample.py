"""Sum-and-sample, Rao-Blackwellised REINFORCE (Liu et al. 2019; Kool et al. 2020) for a categorical latent."""

import torch

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective
from vaelab.objectives.beams import beam_search, one_hot

BASELINES = ("summed", "none")


class SumAndSample(Objective):
    """The exact sum over the set C of the S - 1 most probable values of the joint latent (by beam search over its D
    factorised categoricals), plus one draw z_r from q restricted to the other values (the first of a Gumbel-top-S draw
    outside C). With g(z) = (f(z) - b) grad_phi log q(z|x),

        grad_phi ELBO = sum_{c in C} q(c) g(c) + (1 - q(C)) E_{z_r ~ q(. | not C)}[g(z_r)],

    unbiased for any b fixed given x: `baseline=summed` takes b = sum_{c in C} q(c) f(c) / q(C), the mean of f over the
    summed set, which does not depend on the draw; `none` takes b = 0. The decoder (and a learned prior) gets the same
    weights on grad log p(x, z); train/elbo is sum_C q(c) f(c) + (1 - q(C)) f(z_r). At S = K^D it is exact.
    Liu, Regier, Tripuraneni, Jordan & McAuliffe, "Rao-Blackwellized Stochastic Gradients for Discrete Distributions",
    ICML 2019; Kool, van Hoof & Welling, ICLR 2020.
    """

    latents = ("discrete",)
    hierarchical = False  # sums over the values of one factorised layer
    score_function = True

    def __init__(self, baseline: str = "summed"):
        super().__init__()
        require(baseline in BASELINES, "loss.baseline", baseline, f"one of {', '.join(BASELINES)}")
        self.baseline = baseline

    @property
    def min_samples(self):
        return 2

    @staticmethod
    def values(log_probs, S):
        """The S - 1 most probable values and one drawn from the rest, classes [S, B, D]."""
        summed, _ = beam_search(log_probs, S - 1, stochastic=False)
        drawn, _ = beam_search(log_probs, S)
        outside = (drawn.unsqueeze(1) != summed.unsqueeze(0)).any(-1).all(1)       # [S, B]: not in C
        first = outside.to(torch.uint8).argmax(0)                                   # the first of them, in G's order
        rest = drawn.gather(0, first.view(1, -1, 1).expand(1, *drawn.shape[1:]))
        return torch.cat([summed, rest])

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        log_probs = q.base_dist.logits.detach()
        z = one_hot(self.values(log_probs, S), log_probs.shape[-1], log_probs.dtype)
        log_q = q.log_prob(z)
        log_joint = vae.log_joint(x, z)
        f = (log_joint - log_q).detach()
        summed = log_q[:-1].detach()
        rest_mass = (-torch.expm1(torch.logsumexp(summed, 0).clamp(max=0))).unsqueeze(0)     # 1 - q(C)
        weight = torch.cat([summed.exp(), rest_mass])
        b = (summed.softmax(0) * f[:-1]).sum(0) if self.baseline == "summed" else 0.0
        terms = {"encoder": -(weight * (f - b) * log_q).sum(0).mean(), "decoder": -(weight * log_joint).sum(0).mean()}
        return Estimate(loss=sum(terms.values()), elbo=(weight * f).sum(0), terms=terms)
