"""Double control variates (Titsias & Shi 2022): leave-one-out REINFORCE plus a Taylor control variate."""

import torch
from torch import nn

from vaelab.errors import require
from vaelab.objectives.learned import LearnedControlVariate, bernoulli_draws, others_mean, with_slopes


class DoubleCV(LearnedControlVariate):
    """For q(b|x) = prod_d Bernoulli(theta_d), theta = sigmoid(l), S draws b_s with slopes g_s = df/db at b_s:
    g = 1/S sum_s [h_s - 1/(S-1) sum_{j != s} h_j] (b_s - theta) + alpha gbar theta (1 - theta),
    h_s = f(b_s) - alpha gbar_{-s} . (b_s - theta), gbar_{-s} the mean slope of the other draws:
    the leave-one-out baseline plus the linear (Taylor) control variate, whose expectation given the other draws
    is added back, so unbiased whatever the learned scale alpha. Titsias & Shi, "Double control variates for
    gradient estimation in discrete latent variable models", AISTATS 2022.

    `scale`: alpha's initial value (0, as in the authors' code); `lr`: its learning rate.
    """

    latents = ("binary",)

    def __init__(self, scale: float = 0.0, lr: float = 1e-3):
        super().__init__()
        require(lr > 0, "loss.lr", lr, "a positive learning rate")
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.lr = lr

    @property
    def min_samples(self):
        return 2

    def logit_gradient(self, vae, x, S, logits):
        b = bernoulli_draws(logits, S)
        f, log_joint, slope = with_slopes(vae, x, b, logits)
        theta = torch.sigmoid(logits)
        centred = b - theta
        slope_others = others_mean(slope)
        h = f - self.scale * (slope_others * centred).sum(-1)
        signal = h - others_mean(h)
        g = (signal.unsqueeze(-1) * centred).mean(0) + self.scale * slope.mean(0) * theta * (1 - theta)
        return g, f, log_joint
