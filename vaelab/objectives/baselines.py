"""Control variates b for the score-function learning signal f - b."""

from torch import nn


class NoBaseline(nn.Module):
    """b = 0."""

    min_samples = 1

    def forward(self, f, x):
        return f.new_zeros(())


class LeaveOneOut(nn.Module):
    """b_s = mean_{j != s} f_j over the S samples of the same datum (Kool et al. 2019)."""

    min_samples = 2

    def forward(self, f, x):
        S = f.shape[0]
        return (f.sum(0, keepdim=True) - f) / (S - 1)
