"""Gradient estimators, one family per file, all under the contract in `base`."""

from vaelab.objectives.base import Estimate, Objective
from vaelab.objectives.elbo import ELBO
from vaelab.objectives.reinforce import Reinforce
from vaelab.objectives.variance import VarianceLoss

__all__ = ["ELBO", "Estimate", "Objective", "Reinforce", "VarianceLoss"]
