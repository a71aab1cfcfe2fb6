"""Distinct values of a factorised categorical q(z) = prod_d Cat(z_d; softmax(l_d)), found over its K^D joint values by
beam search over the D variables: the k most probable, or k drawn without replacement (Gumbel-top-k)."""

import math

import torch

from vaelab.errors import require


def log1mexp(x):
    """log(1 - exp(x)) for x <= 0, accurate on either side of -log 2 (Maechler 2012)."""
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def truncated_gumbel(perturbed, bound):
    """Gumbels [..., K] conditioned on their maximum being `bound` [..., 1]: -log(e^-bound - e^-Z + e^-g), Z = max g,
    written as bound - softplus(v), v = bound - g + log(1 - e^{g - Z}), stable for every g."""
    v = bound - perturbed + log1mexp(perturbed - perturbed.amax(-1, keepdim=True))
    return bound - v.clamp(min=0) - torch.log1p(torch.exp(-v.abs()))


def beam_search(log_probs, k: int, stochastic: bool = True):
    """The k joint values z with the largest log q(z) + G_z, largest first: G_z ~ Gumbel(0, 1) independently for each
    of the K^D values when `stochastic` (so the k are drawn from q without replacement; Kool, van Hoof & Welling 2019),
    else G = 0 (the k most probable values). log_probs [B, D, K] are q's normalised log-probabilities; returns the
    classes [k, B, D] and log q(z) [k, B]. Beam search is exact here: a partial assignment of variables 1..d carries
    the largest score over its completions (its log-probability, or, stochastic, a Gumbel of that location drawn
    given its parent's), so the k best values descend from the k best partial assignments at every depth."""
    B, D, K = log_probs.shape
    require(k <= K**D, "S", k, f"at most K^D = {K**D}, the number of values of the latent, for draws without replacement")
    log_q = log_probs.new_zeros(B, 1)
    score = log_probs.new_zeros(B, 1)
    classes = torch.zeros(B, 1, 0, dtype=torch.long, device=log_probs.device)
    for d in range(D):
        child_log_q = log_q.unsqueeze(-1) + log_probs[:, d].unsqueeze(1)           # [B, width, K]
        child_score = child_log_q
        if stochastic:
            gumbel = -torch.empty_like(child_log_q).exponential_().log()
            child_score = truncated_gumbel(child_log_q + gumbel, score.unsqueeze(-1))
        score, best = child_score.flatten(1).topk(min(k, child_score[0].numel()), -1)
        parent = (best // K).unsqueeze(-1).expand(-1, -1, d)
        classes = torch.cat([classes.gather(1, parent), (best % K).unsqueeze(-1)], -1)
        log_q = child_log_q.flatten(1).gather(1, best)
    return classes.movedim(1, 0), log_q.T


def one_hot(classes, K: int, dtype):
    """One-hot vectors [..., K] at `classes` (a scatter: F.one_hot reads the classes' range back to the host)."""
    return torch.zeros(*classes.shape, K, dtype=dtype, device=classes.device).scatter_(-1, classes.unsqueeze(-1), 1.0)
