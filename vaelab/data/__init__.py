"""Data modules: each loads its whole data set into one tensor."""

from vaelab.data.base import InMemoryDataModule, data_root
from vaelab.data.binarized_mnist import BinarizedMNIST
from vaelab.data.digits import Digits
from vaelab.data.frey_face import FreyFace
from vaelab.data.linear_gaussian import LinearGaussian
from vaelab.data.mnist import MNIST, FashionMNIST
from vaelab.data.omniglot import Omniglot

__all__ = ["MNIST", "BinarizedMNIST", "Digits", "FashionMNIST", "FreyFace", "InMemoryDataModule", "LinearGaussian",
           "Omniglot", "data_root"]
