"""Decoder likelihoods p(x|z): the decoder emits `param_size(n)` numbers for n pixels."""

from torch import nn
from torch.distributions import Bernoulli as _Bernoulli
from torch.distributions import Independent


class Bernoulli(nn.Module):
    """log p(x|z) = sum_i x_i log sigmoid(l_i) + (1 - x_i) log sigmoid(-l_i), for x in [0, 1]."""

    data_range = (0.0, 1.0)

    def param_size(self, n: int) -> int:
        return n

    def distribution(self, params, event_shape):
        logits = params.unflatten(-1, event_shape)
        return Independent(_Bernoulli(logits=logits, validate_args=False), len(event_shape))

    def mean(self, params, event_shape):
        return params.unflatten(-1, event_shape).sigmoid()
