"""Gradient estimators, one family per file, all under the contract in `base`."""

from vaelab.objectives.arms import ARMS
from vaelab.objectives.base import Estimate, Objective
from vaelab.objectives.disarm import DisARM
from vaelab.objectives.elbo import ELBO
from vaelab.objectives.gumbel import GumbelSoftmax
from vaelab.objectives.iwae import IWAE
from vaelab.objectives.reinforce import Reinforce
from vaelab.objectives.sum_and_sample import SumAndSample
from vaelab.objectives.unordered_set import UnorderedSet
from vaelab.objectives.variance import VarianceLoss
from vaelab.objectives.vimco import VIMCO

__all__ = ["ARMS", "DisARM", "ELBO", "Estimate", "GumbelSoftmax", "IWAE", "Objective", "Reinforce", "SumAndSample",
           "UnorderedSet", "VIMCO", "VarianceLoss"]
