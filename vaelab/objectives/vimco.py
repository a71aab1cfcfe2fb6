"""VIMCO: multi-sample score-function gradient of the importance-weighted bound (Mnih & Rezende 2016)."""

import math

import torch

from vaelab.objectives.base import Estimate, Objective, scored_draws
from vaelab.objectives.iwae import log_mean_exp


def leave_one_out_bounds(f):
    """L_{-s} = log (1/S) (sum_{j != s} w_j + exp(mean_{j != s} f_j)): the bound with w_s replaced
    by the geometric mean of the others, shape [S, B]."""
    S = f.shape[0]
    geometric = (f.sum(0, keepdim=True) - f) / (S - 1)
    others = f.unsqueeze(0).expand(S, *f.shape).clone()
    others[torch.arange(S), torch.arange(S)] = geometric
    return torch.logsumexp(others, 1) - math.log(S)


class VIMCO(Objective):
    """grad L_S = E[sum_s (L - L_{-s}) grad log q(z_s|x) + sum_s w~_s grad f(z_s, x)], z_s ~ q detached,
    L = log (1/S) sum_s w_s, w~_s = w_s / sum_j w_j. The encoder gets both sums; the decoder (and a learned
prior) gets the second, the gradient of the same bound L."""

    latents = ("discrete", "binary")
    hierarchical = score_function = True
    encoder_objective = decoder_objective = "iwae"

    @property
    def min_samples(self):
        return 2

    def forward(self, vae, x, S):
        _, log_q, log_joint = scored_draws(vae, x, S)
        f = (log_joint - log_q).detach()
        bound = log_mean_exp(f)
        signal = bound - leave_one_out_bounds(f)
        encoder = (signal * log_q).sum(0) + log_mean_exp(log_joint.detach() - log_q)
        terms = {"encoder": -encoder.mean(), "decoder": -log_mean_exp(log_joint - log_q.detach()).mean()}
        return Estimate(loss=sum(terms.values()), elbo=f.mean(0), metrics={"iwae": bound.mean()}, terms=terms)
