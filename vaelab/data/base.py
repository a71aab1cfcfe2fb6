"""In-memory data modules: the whole data set is one tensor on the training device, batches are
index gathers there, and binarisation is one Bernoulli draw on that device."""

import math
import os
from pathlib import Path

import lightning.pytorch as L
import torch

from vaelab.errors import require

BINARIZE = ("dynamic", "static", "none")
LIKELIHOOD_FOR = {"binary": "bernoulli", "unit": "continuous_bernoulli", "real": "gaussian"}
REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def data_root(root=None) -> Path:
    """`root` if given, else $VAELAB_DATA_DIR, else data/ in the repository."""
    return Path(root or os.environ.get("VAELAB_DATA_DIR") or REPO_DATA)


def binarize(p: torch.Tensor) -> torch.Tensor:
    """x ~ Bernoulli(p), drawn as x = 1[u < p] with u ~ U[0, 1): one vectorised uniform draw and a comparison,
    where torch.bernoulli's CPU kernel draws one element at a time."""
    return torch.rand_like(p).lt_(p)


def held_out(x: torch.Tensor, seed: int, *sizes: int):
    """A seeded shuffle of `x` cut into pieces of `sizes` and the rest: (rest, *pieces)."""
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))]
    pieces = x.split([*sizes, len(x) - sum(sizes)])
    return pieces[-1], *pieces[:-1]


class Batches:
    """An epoch of batches of `x`'s rows, for Lightning, which takes any sized iterable as a data loader: each
    batch is one index gather on x's device, and a shuffle one randperm there (from torch's global RNG, so
    seeding and resume cover it); no index list crosses from the host. torch's DataLoader would add its
    sampler, fetcher, collation and profiler ops to every step, for nothing on data already in memory."""

    def __init__(self, x: torch.Tensor, batch_size: int, shuffle: bool):
        self.x, self.batch_size, self.shuffle = x, batch_size, shuffle

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        """Draws the order at the first batch, not at iter(): Lightning calls iter() on a loader that is not a
        DataLoader to check it, once more on resuming, and a resumed run must draw what an unbroken one does."""
        order = torch.randperm if self.shuffle else torch.arange
        for index in order(len(self.x), device=self.x.device).split(self.batch_size):
            yield self.x[index]


class InMemoryDataModule(L.LightningDataModule):
    """Subclasses set `event_shape` and implement `load() -> (train, val, test)`, float tensors in [0, 1].

    `support` says which values the model sees and `likelihood` names the conf/likelihood option
    that fits them, used unless the user picks one; a subclass may set either as a class attribute.

    binarize: "dynamic" draws x ~ Bernoulli(pixels) afresh each time a training batch is served;
    "static" draws the training set once with `seed`; "none" keeps gray values.
    Validation and test sets are binarised once with `seed` (unless "none"), so every run and
    every epoch is scored on the same data.
    """

    event_shape: tuple[int, ...] = ()

    def __init__(self, root=None, batch_size: int = 128, binarize: str = "dynamic", seed: int = 0):
        super().__init__()
        require(batch_size >= 1, "dataset.batch_size", batch_size, "a positive integer")
        require(binarize in BINARIZE, "dataset.binarize", binarize, f"one of {', '.join(BINARIZE)}")
        self.root = data_root(root)
        self.batch_size, self.binarize, self.seed = batch_size, binarize, seed
        self.splits = None

    @property
    def support(self) -> str:
        """Values the model sees: "binary" (x in {0, 1}) once binarised, else "unit" (x in [0, 1])."""
        return "unit" if self.binarize == "none" else "binary"

    @property
    def likelihood(self) -> str:
        return LIKELIHOOD_FOR[self.support]

    def load(self):
        raise NotImplementedError

    def setup(self, stage=None):
        if self.splits is not None:
            return
        train, val, test = self.load()
        generator = torch.Generator().manual_seed(self.seed)
        if self.binarize != "none":  # torch.bernoulli takes a generator: fixed evaluation data whatever the run's seed
            val, test = (torch.bernoulli(s, generator=generator) for s in (val, test))
        if self.binarize == "static":
            train = torch.bernoulli(train, generator=generator)
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        self.splits = {"train": train.to(device), "val": val.to(device), "test": test.to(device)}

    def on_after_batch_transfer(self, batch, dataloader_idx):
        if self.binarize == "dynamic" and self.trainer is not None and self.trainer.training:
            return binarize(batch)
        return batch

    def _loader(self, split, shuffle):
        return Batches(self.splits[split], self.batch_size, shuffle)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)
