"""Encoder and decoder networks."""

from collections.abc import Callable, Sequence

from torch import nn


def mlp(n_in: int, n_out: int, hidden: Sequence[int] = (512, 256), activation: Callable[[], nn.Module] = nn.ReLU):
    """n_in -> hidden[0] -> ... -> hidden[-1] -> n_out, `activation` between layers, linear output."""
    sizes = [n_in, *hidden]
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], n_out))
