"""RELAX (Grathwohl et al. 2018): REBAR's relaxed control variate plus a learned network."""

import torch
from torch import nn

from vaelab.errors import require
from vaelab.objectives.rebar import REBAR


class RELAX(REBAR):
    """As REBAR with c(z) = eta f(sigma_lambda(z)) + r_rho(sigma_lambda(z)[, x]), r_rho a one-hidden-layer ReLU
    network on 2 sigma_lambda(z) - 1 (and x with `with_x`); unbiased whatever eta, lambda and rho, all learned by
    the variance surrogate. With several layers c_k reads REBAR's relaxed pass for layer k (the layers before it
    hard), every layer's value z1 first, through one network for all layers: a function of z_k given the other
    layers' noise, as REBAR's unbiasedness asks. Grathwohl et al., "Backpropagation through the void: optimizing
    control variates for black-box gradient estimation", ICLR 2018.

    `hidden`: r_rho's hidden units; `eta`, `temperature`: initial values; `lr`: their learning rate.
    """

    def __init__(self, eta: float = 1.0, temperature: float = 0.5, hidden: int = 50, with_x: bool = False,
                 lr: float = 1e-4):
        super().__init__(eta, temperature, lr)
        require(hidden >= 1, "loss.hidden", hidden, "a positive number of hidden units")
        self.with_x = with_x
        self.net = nn.Sequential(nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def control(self, x, relaxed, f_relaxed):
        inputs = 2 * relaxed - 1
        if self.with_x:
            inputs = torch.cat([inputs, x.flatten(1).expand(len(inputs), -1, -1)], -1)
        return super().control(x, relaxed, f_relaxed) + self.net(inputs).squeeze(-1)
