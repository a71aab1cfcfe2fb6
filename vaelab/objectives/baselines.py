"""Control variates for the score-function learning signal: each maps f [S, B] (detached) and the data x to the
centred signal (f - b) / scale, b and scale independent of the current draws (so the gradient stays unbiased), its
surrogate (the loss of its own parameters, reaching them alone; None when it learns nothing) and its state (this
step's detached statistics, which `advance` folds into the running averages after the optimiser step).

State (running averages, the NVIL network) lives in the module, so checkpoints carry it.
"""

import torch
from torch import nn


class NoBaseline(nn.Module):
    """b = 0."""

    min_samples = 1

    def forward(self, f, x):
        return f, None, {}

    def advance(self, state):
        pass


class LeaveOneOut(NoBaseline):
    """b_s = mean_{j != s} f_j over the S samples of the same datum (Kool et al. 2019)."""

    min_samples = 2

    def forward(self, f, x):
        S = f.shape[0]
        return f - (f.sum(0, keepdim=True) - f) / (S - 1), None, {}


class MovingAverage(nn.Module):
    """b = c, an exponential moving average of the batch mean of f: c <- decay c + (1 - decay) mean f."""

    min_samples = 1

    def __init__(self, decay: float = 0.9):
        super().__init__()
        self.decay = decay
        self.register_buffer("mean", torch.zeros(()))

    def forward(self, f, x):
        return f - self.mean, None, {"mean": f.mean()}

    def advance(self, state):
        self.mean.lerp_(state["mean"], 1 - self.decay)


class NVIL(nn.Module):
    """Neural variational inference and learning (Mnih & Gregor 2014): b(x) = c + h_psi(x), h_psi a
    one-hidden-layer MLP on x fitted to f - c by least squares (its surrogate), c the running mean of f - h_psi(x);
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
        surrogate = ((f - self.mean - h) ** 2).mean()
        return signal, surrogate, {"mean": residual.mean(), "var": residual.var()}

    def advance(self, state):
        self.mean.lerp_(state["mean"], 1 - self.decay)
        self.var.lerp_(state["var"], 1 - self.decay)
