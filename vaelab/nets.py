"""Encoder and decoder networks."""

from collections.abc import Callable, Sequence

from torch import nn

from vaelab.errors import require


def mlp(n_in: int, n_out: int, hidden: Sequence[int] = (512, 256), activation: Callable[[], nn.Module] = nn.ReLU):
    """n_in -> hidden[0] -> ... -> hidden[-1] -> n_out, `activation` between layers, linear output. A layer of
    width 0 cuts the input off (a decoder that ignores z), so widths are positive."""
    require(all(isinstance(h, int) and h >= 1 for h in hidden), "hidden", list(hidden), "a list of positive layer widths")
    sizes = [n_in, *hidden]
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], n_out))
