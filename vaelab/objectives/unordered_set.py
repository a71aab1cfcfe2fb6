"""The unordered set estimator (Kool, van Hoof & Welling 2020): S draws of a categorical latent without replacement."""

import math

import torch

from vaelab.objectives.base import Estimate, Objective
from vaelab.objectives.beams import beam_search, log1mexp, one_hot

LOG_T = torch.arange(-30.0, 6.0, 0.2, dtype=torch.float64)  # the quadrature's nodes in log t (below)


def leave_out_log_ratios(log_p):
    """For k distinct values drawn without replacement, with log-probabilities log_p [k, B]:
    log R1_s = log P^{D-s}(S-s) - log P(S) [k, B] and log R2_{s,s'} = log P^{D-s-s'}(S-s-s') - log P^{D-s}(S-s)
    [k, k, B] (0 where s' = s), P^A(U) the probability that draws without replacement from the domain A (q renormalised
    on A) give the set U. Each P is P(U) = int_0^inf e^{-t} prod_{s in U} (1 - e^{-a_s t}) dt with a_s = p_s / p(D - S),
    the same a for every leave-out set (its domain less the set is D - S; Kool et al. 2020, appendix), by the
    trapezoid rule in log t, whose error is far below float64 rounding for integrands of this form."""
    lp = log_p.double()
    log_rest = log1mexp(torch.logsumexp(lp, 0).clamp(max=0))                       # log p(D - S), [B]
    log_t = LOG_T.to(lp.device)
    log_at = (lp - log_rest).unsqueeze(-1) + log_t                                  # log a_s t, [k, B, T]
    # log(1 - e^{-a t}), by its series where a t is small enough that 1 - e^{-a t} would round to 0
    factor = torch.where(log_at < -15, log_at - log_at.exp() / 2, torch.log(-torch.expm1(-log_at.exp())))
    measure = log_t - log_t.exp() + math.log(0.2)                                   # e^{-t} dt, dt = t d(log t)
    every = factor.sum(0)                                                           # [B, T]
    one_out = every - factor                                                        # [k, B, T]
    two_out = one_out.unsqueeze(1) - factor                                         # [k, k, B, T]
    log_P = torch.logsumexp(measure + every, -1)
    log_P1 = torch.logsumexp(measure + one_out, -1)
    log_P2 = torch.logsumexp(measure + two_out, -1)
    same = torch.eye(len(lp), dtype=torch.bool, device=lp.device).unsqueeze(-1)
    log_R2 = torch.where(same, 0.0, log_P2 - log_P1.unsqueeze(1))
    return (log_P1 - log_P).to(log_p.dtype), log_R2.to(log_p.dtype)


class UnorderedSet(Objective):
    """S distinct values z_1..z_S of the joint latent drawn from q(z|x) without replacement (Gumbel-top-S over all K^D
    values, by stochastic beam search over the D categoricals, as Kool et al. do for their factorised VAE latent), and

        grad_phi ELBO = E[sum_s w_s (f(z_s) - b_s) grad_phi log q(z_s|x)],  w_s = q(z_s) R1_s,
        b_s = q(z_s) f(z_s) + sum_{s' != s} q(z_s') R2_{s,s'} f(z_s')   (`leave_out_log_ratios`),

    the built-in baseline b_s being the unordered-set estimate of E_q[f] given that z_s was drawn first. The decoder
    (and a learned prior) gets sum_s w_s grad log p(x, z_s); train/elbo is sum_s w_s f(z_s), unbiased. With all K^D
    values drawn (S = K^D) every gradient is the exact one. S may not exceed K^D.
    Kool, van Hoof & Welling, "Estimating Gradients for Discrete Random Variables by Sampling without Replacement",
    ICLR 2020.
    """

    latents = ("discrete",)
    hierarchical = False  # draws without replacement from one factorised layer
    score_function = True

    @property
    def min_samples(self):
        return 2

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        log_probs = q.base_dist.logits.detach()
        classes, _ = beam_search(log_probs, S)
        z = one_hot(classes, log_probs.shape[-1], log_probs.dtype)
        log_q = q.log_prob(z)
        log_joint = vae.log_joint(x, z)
        f = (log_joint - log_q).detach()
        lp = log_q.detach()
        log_R1, log_R2 = leave_out_log_ratios(lp)
        weight = (lp + log_R1).exp()
        baseline = ((lp + log_R2).exp() * f).sum(1)
        terms = {"encoder": -(weight * (f - baseline) * log_q).sum(0).mean(), "decoder": -(weight * log_joint).sum(0).mean()}
        return Estimate(loss=sum(terms.values()), elbo=(weight * f).sum(0), terms=terms)
