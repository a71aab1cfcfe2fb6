"""Gradient estimators, one family per file, all under the contract in `base`."""

from vaelab.objectives.arms import ARMS
from vaelab.objectives.base import Estimate, Objective
from vaelab.objectives.disarm import DisARM
from vaelab.objectives.double_cv import DoubleCV
from vaelab.objectives.elbo import ELBO
from vaelab.objectives.gumbel import GumbelSoftmax
from vaelab.objectives.iwae import IWAE
from vaelab.objectives.rebar import REBAR
from vaelab.objectives.reinforce import Reinforce
from vaelab.objectives.relax import RELAX
from vaelab.objectives.rodeo import RODEO
from vaelab.objectives.sum_and_sample import SumAndSample
from vaelab.objectives.unordered_set import UnorderedSet
from vaelab.objectives.variance import VarianceLoss
from vaelab.objectives.vimco import VIMCO

__all__ = ["ARMS", "DisARM", "DoubleCV", "ELBO", "Estimate", "GumbelSoftmax", "IWAE", "Objective", "REBAR", "RELAX",
           "RODEO", "Reinforce", "SumAndSample", "UnorderedSet", "VIMCO", "VarianceLoss"]
