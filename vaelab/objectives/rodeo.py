"""RODEO (Shi et al. 2022): REINFORCE with control variates from a discrete Stein operator."""

import torch
from torch import nn

from vaelab.errors import require
from vaelab.objectives.learned import LearnedControlVariate, bernoulli_draws, others_mean, with_slopes


class RODEO(LearnedControlVariate):
    """For q(b|x) = prod_d Bernoulli(theta_d), the Gibbs Stein operator over the one-bit-flip neighbours n_d(b):
    (A phi)(b) = 1/D sum_d w_d [phi(n_d(b)) - phi(b)], w_d = q(coordinate d flipped), E_q[A phi] = 0 for any phi.
    With S draws and, for draw s, (h0, h1) = net(taylor_s(y), fbar_{-s}), taylor_s(y) = mean_{j != s} g_j . (y - b_j)
    (g_j = df/db at b_j), fbar_{-s} the mean f of the other draws:
    g = 1/S sum_s [(f_s - 1/(S-1) sum_{j != s} (f_j + alpha (A h0)(b_j))) (b_s - theta) + beta (A [h1 (y - theta)])(b_s)],
    unbiased whatever alpha, beta and the network: each Stein term has mean zero given the draws that built its
    function. alpha, beta and the network are learned by the variance surrogate. Shi, Zhou, Hwang, Titsias &
    Mackey, "Gradient estimation with discrete Stein operators", NeurIPS 2022.

    `hidden`: the network's hidden units (one LeakyReLU layer on the two inputs); `lr`: the learning rate
    of alpha, beta (both starting at 0) and the network.
    """

    latents = ("binary",)

    def __init__(self, hidden: int = 100, lr: float = 1e-3):
        super().__init__()
        require(hidden >= 1, "loss.hidden", hidden, "a positive number of hidden units")
        require(lr > 0, "loss.lr", lr, "a positive learning rate")
        self.alpha = nn.Parameter(torch.zeros(()))
        self.beta = nn.Parameter(torch.zeros(()))
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(0.3), nn.Linear(hidden, 2))
        self.lr = lr

    @property
    def min_samples(self):
        return 2

    def logit_gradient(self, vae, x, S, logits):
        b = bernoulli_draws(logits, S)
        f, log_joint, slope = with_slopes(vae, x, b, logits)
        theta = torch.sigmoid(logits)
        centred, flip = b - theta, 1 - 2 * b  # n_d(b) - b = flip_d e_d
        slope_others = others_mean(slope)
        taylor = (slope_others * b).sum(-1) - others_mean((slope * b).sum(-1))  # taylor_s(b_s), [S, B]
        taylor_neighbours = taylor.unsqueeze(-1) + slope_others * flip  # taylor_s(n_d(b_s)), [S, B, D]
        f_others = others_mean(f)
        h = self.net(torch.stack([taylor, f_others], -1))  # (h0, h1) at b_s, [S, B, 2]
        h_neighbours = self.net(torch.stack([taylor_neighbours, f_others.unsqueeze(-1).expand_as(flip)], -1))
        w = torch.where(b > 0, 1 - theta, theta)  # q(coordinate d flipped)
        stein_scalar = (w * (h_neighbours[..., 0] - h[..., :1])).mean(-1)
        w_h1 = w * h_neighbours[..., 1]
        stein_vector = (w_h1.mean(-1, keepdim=True) - w.mean(-1, keepdim=True) * h[..., 1:]) * centred \
            + w_h1 * flip / b.shape[-1]
        baseline = others_mean(f + self.alpha * stein_scalar)
        g = ((f - baseline).unsqueeze(-1) * centred + self.beta * stein_vector).mean(0)
        return g, f, log_joint
