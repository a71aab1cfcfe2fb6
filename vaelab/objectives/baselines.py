"""Control variates for the score-function learning signal: each maps f [S, B] (detached) and the
data x to the centred signal (f - b) / scale, b and scale independent of the current draws (so the
gradient stays unbiased), plus the baseline's own training loss (zero when it learns nothing).

State (running averages, the NVIL network) lives in the module, so checkpoints carry it; running
averages advance only in training mode.
"""

import torch
from torch import nn


class NoBaseline(nn.Module):
    """b = 0."""

    min_samples = 1

    def forward(self, f, x):
        return f, f.new_zeros(())


class LeaveOneOut(nn.Module):
    """b_s = mean_{j != s} f_j over the S samples of the same datum (Kool et al. 2019)."""

    min_samples = 2

    def forward(self, f, x):
        S = f.shape[0]
        return f - (f.sum(0, keepdim=True) - f) / (S - 1), f.new_zeros(())


class MovingAverage(nn.Module):
    """b = c, an exponential moving average of the batch mean of f: c <- decay c + (1 - decay) mean f."""

    min_samples = 1

    def __init__(self, decay: float = 0.9):
        super().__init__()
        self.decay = decay
        self.register_buffer("mean", torch.zeros(()))

    def forward(self, f, x):
        signal = f - self.mean
        if self.training:
            self.mean.lerp_(f.mean(), 1 - self.decay)
        return signal, f.new_zeros(())


class NVIL(nn.Module):
    """Neural variational inference and learning (Mnih & Gregor 2014): b(x) = c + h_psi(x), h_psi a
    one-hidden-layer MLP on x fitted to f - c by least squares, c the running mean of f - h_psi(x);
    with `normalise`, the signal is divided by max(1, running std of f - h_psi(x))."""

    min_samples = 1

    def __init__(self, hidden: int = 100, decay: float = 0.8, normalise: bool = True):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.decay, self.normalise = decay, normalise
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("var", torch.ones(()))

    @property
    def scale(self):
        return self.var.sqrt().clamp(min=1) if self.normalise else self.var.new_ones(())

    def forward(self, f, x):
        h = self.net(x.flatten(1)).squeeze(-1)
        residual = f - h.detach()
        signal = (residual - self.mean) / self.scale
        loss = ((f - self.mean - h) ** 2).mean()
        if self.training:
            self.mean.lerp_(residual.mean(), 1 - self.decay)
            self.var.lerp_(residual.var(), 1 - self.decay)
        return signal, loss
