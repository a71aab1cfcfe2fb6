"""In-memory data modules: the whole data set is one tensor on the training device, batches are
index gathers there, and binarisation is one Bernoulli draw on that device."""

import math
import os
from pathlib import Path

import lightning.pytorch as L
import torch

from vaelab.errors import require

BINARIZE = ("dynamic", "static", "threshold", "none")
VAL_SPLITS = ("random", "first", "last")
LIKELIHOOD_FOR = {"binary": "bernoulli", "unit": "continuous_bernoulli", "real": "gaussian"}
REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def data_root(root=None) -> Path:
    """`root` if given, else $VAELAB_DATA_DIR, else data/ in the repository."""
    return Path(root or os.environ.get("VAELAB_DATA_DIR") or REPO_DATA)


def binarize(p: torch.Tensor) -> torch.Tensor:
    """x ~ Bernoulli(p), drawn as x = 1[u < p] with u ~ U[0, 1): one vectorised uniform draw and a comparison,
    where torch.bernoulli's CPU kernel draws one element at a time."""
    return torch.rand_like(p).lt_(p)


def check_held_out(total: int, what: str, **sizes: int):
    """Refuse held-out sizes (val_size, test_size) that are not positive integers, or that leave none of the
    `total` items of `what` for training, naming the size at fault (the largest, where together they are too many)."""
    for name, size in sizes.items():
        require(isinstance(size, int) and not isinstance(size, bool) and size >= 1, name, size, "a positive integer")
    name = max(sizes, key=sizes.get)
    others = sum(sizes.values()) - sizes[name]
    others_text = "".join(f", {k}={v}" for k, v in sizes.items() if k != name)
    require(sizes[name] + others < total, name, sizes[name],
            f"between 1 and {total - others - 1} ({total} {what}{others_text}, at least one left for training)")


def held_out(x: torch.Tensor, seed: int, *sizes: int):
    """A seeded shuffle of `x` cut into pieces of `sizes` and the rest: (rest, *pieces)."""
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))]
    pieces = x.split([*sizes, len(x) - sum(sizes)])
    return pieces[-1], *pieces[:-1]


def split_off(x: torch.Tensor, size: int, how: str, seed: int):
    """(train, val): `size` rows of `x` held out for validation, drawn by a seeded shuffle ("random"), or its first
    rows in file order ("first": TensorFlow's tutorial reader, input_data.read_data_sets, which the ARM code uses),
    or its last ("last": the DisARM code's train[:50000] / train[50000:] of MNIST and its last 1345 Omniglot
    training images, google-research/disarm/binary/dataset.py)."""
    if how == "first":
        return x[size:], x[:size]
    if how == "last":
        return x[:-size], x[-size:]
    return held_out(x, seed, size)


class Batches:
    """An epoch of batches of `x`'s rows, for Lightning, which takes any sized iterable as a data loader: each
    batch is one index gather on x's device, and a shuffle one randperm there (from torch's global RNG, so
    seeding and resume cover it); no index list crosses from the host. torch's DataLoader would add its
    sampler, fetcher, collation and profiler ops to every step, for nothing on data already in memory.

    Under data parallelism (`world_size` processes) each process serves its shard of the epoch, the rows at
    positions rank, rank + world_size, ... of one order: the order rank 0 draws, handed to every process by
    `broadcast`. With `even` (training) every shard has ceil(N / world_size) rows, the order's first rows served
    twice to fill the last shards, so that every process takes the same number of steps (DDP averages the
    gradients of all processes at each step); without it (evaluation) every row is served once, so that means
    over the processes' shards, weighted by their sizes, are exact."""

    def __init__(self, x: torch.Tensor, batch_size: int, shuffle: bool, even: bool = False, rank: int = 0,
                 world_size: int = 1, broadcast=None):
        self.x, self.batch_size, self.shuffle, self.even = x, batch_size, shuffle, even
        self.rank, self.world_size, self.broadcast = rank, world_size, broadcast

    def __len__(self):
        return math.ceil(self.shard_size() / self.batch_size)

    def shard_size(self) -> int:
        n = len(self.x)
        return math.ceil(n / self.world_size) if self.even else len(range(self.rank, n, self.world_size))

    def __iter__(self):
        """Draws the order at the first batch, not at iter(): Lightning calls iter() on a loader that is not a
        DataLoader to check it, once more on resuming, and a resumed run must draw what an unbroken one does."""
        n = len(self.x)
        order = (torch.randperm if self.shuffle else torch.arange)(n, device=self.x.device)
        if self.world_size > 1:
            if self.shuffle:
                order = self.broadcast(order)
            if self.even:
                order = torch.cat([order, order[: self.shard_size() * self.world_size - n]])
            order = order[self.rank :: self.world_size]
        for index in order.split(self.batch_size):
            yield self.x[index]


class InMemoryDataModule(L.LightningDataModule):
    """Subclasses set `event_shape` and implement `load() -> (train, val, test)`, float tensors in [0, 1].

    `support` says which values the model sees and `likelihood` names the vaelab/conf/likelihood option
    that fits them, used unless the user picks one; a subclass may set either as a class attribute.

    binarize: "dynamic" draws x ~ Bernoulli(pixels) afresh each time a training batch is served;
    "static" draws the training set once with `seed`; "threshold" sets x = 1[pixel > 1/2] in every split (the
    ARM and Gumbel-softmax codes' binarisation); "none" keeps gray values.
    Validation and test sets are binarised once with `seed` (by a draw, or the threshold; unless "none"), so every
    run and every epoch is scored on the same data.
    """

    event_shape: tuple[int, ...] = ()

    def __init__(self, root: str | Path | None = None, batch_size: int = 128, binarize: str = "dynamic",
                 seed: int = 0):
        super().__init__()
        require(batch_size >= 1, "batch_size", batch_size, "a positive integer")
        require(binarize in BINARIZE, "binarize", binarize, f"one of {', '.join(BINARIZE)}")
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
        """Load and binarise the splits once, onto the training device (a data module set up before it had a
        trainer, for pixel_means, moves its splits there)."""
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if self.splits is None:
            self.splits = dict(zip(("train", "val", "test"), self.binarized(*self.load())))
        self.splits = {split: x.to(device) for split, x in self.splits.items()}

    def binarized(self, train, val, test):
        generator = torch.Generator().manual_seed(self.seed)
        if self.binarize == "threshold":
            train, val, test = (s.gt(0.5).to(s.dtype) for s in (train, val, test))
        elif self.binarize != "none":  # torch.bernoulli takes a generator: fixed evaluation data whatever the run's seed
            val, test = (torch.bernoulli(s, generator=generator) for s in (val, test))
        if self.binarize == "static":
            train = torch.bernoulli(train, generator=generator)
        return train, val, test

    def pixel_means(self) -> torch.Tensor:
        """E[x] per pixel over the training set as the model sees it (for "dynamic", the gray values, which are
        the binarised pixels' expectations), shape event_shape: what the DisARM code centres the encoder's input by
        and sets the decoder's output bias from."""
        self.setup()
        return self.splits["train"].mean(0)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        if self.binarize == "dynamic" and self.trainer is not None and self.trainer.training:
            return binarize(batch)
        return batch

    def _loader(self, split, shuffle):
        """Batches of a split; under data parallelism, this process's shard of them (see Batches)."""
        if self.trainer is None or self.trainer.world_size == 1:
            return Batches(self.splits[split], self.batch_size, shuffle, even=shuffle)
        strategy = self.trainer.strategy
        return Batches(self.splits[split], self.batch_size, shuffle, even=shuffle, rank=self.trainer.global_rank,
                       world_size=self.trainer.world_size, broadcast=lambda t: strategy.broadcast(t.cpu()).to(t.device))

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)
