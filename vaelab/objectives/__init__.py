"""Gradient estimators, one family per file, all under the contract in `base`."""

from vaelab.objectives.base import Estimate, Objective
from vaelab.objectives.disarm import DisARM
from vaelab.objectives.elbo import ELBO
from vaelab.objectives.gumbel import GumbelSoftmax
from vaelab.objectives.iwae import IWAE
from vaelab.objectives.reinforce import Reinforce
from vaelab.objectives.variance import VarianceLoss
from vaelab.objectives.vimco import VIMCO

__all__ = ["DisARM", "ELBO", "Estimate", "GumbelSoftmax", "IWAE", "Objective", "Reinforce", "VIMCO", "VarianceLoss"]
