"""Data modules: each loads its whole data set into one tensor."""

from vaelab.data.base import InMemoryDataModule, data_root
from vaelab.data.digits import Digits
from vaelab.data.mnist import MNIST, FashionMNIST

__all__ = ["MNIST", "Digits", "FashionMNIST", "InMemoryDataModule", "data_root"]
