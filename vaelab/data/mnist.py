"""MNIST and Fashion-MNIST, parsed from the four IDX .gz files in torchvision's raw layout."""

from pathlib import Path

import torchvision.datasets as tvd
from torchvision.datasets.utils import download_url

from vaelab.data.base import VAL_SPLITS, InMemoryDataModule, check_held_out, split_off
from vaelab.data.files import absent, verify
from vaelab.data.idx import read_idx
from vaelab.errors import require


class MNIST(InMemoryDataModule):
    """28x28 digits, 60k train (split into train/validation by `val_size`, `val_split` says which: a seeded random
    draw, or the last images in file order) and 10k test.

    Files: ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, checked against
    torchvision's md5s; downloaded there from torchvision's mirrors when absent and `download`.
    """

    event_shape = (28, 28)
    source = tvd.MNIST

    def __init__(self, root: str | Path | None = None, batch_size: int = 128, binarize: str = "dynamic",
                 val_size: int = 5000, download: bool = True, seed: int = 0, val_split: str = "random"):
        super().__init__(root, batch_size, binarize, seed)
        check_held_out(60000, "training images", val_size=val_size)
        require(val_split in VAL_SPLITS, "val_split", val_split, f"one of {', '.join(VAL_SPLITS)}")
        self.val_size, self.download, self.val_split = val_size, download, val_split

    @property
    def folder(self):
        return self.root / self.source.__name__ / "raw"

    def files(self):
        """Each raw file's path, after checking its md5 (and downloading it if absent and allowed)."""
        paths = {}
        for name, md5 in self.source.resources:
            path = self.folder / name
            if not path.exists() and self.download:
                self._download(name, md5)
            if not path.exists():
                raise absent(f"{self.source.__name__} file {name}", self.folder, name,
                             ", or allow dataset.download=true on a machine with a network")
            paths[name] = verify(path, "md5", md5)
        return paths

    def _download(self, name, md5):
        errors = []
        for mirror in self.source.mirrors:
            try:
                download_url(mirror + name, str(self.folder), filename=name, md5=md5)
                return
            except Exception as e:  # noqa: BLE001 - every mirror may fail; report them all below
                errors.append(f"{mirror}: {e}")
        raise FileNotFoundError(
            f"{self.source.__name__} file {name} is not in {self.folder} and downloading it failed "
            f"({'; '.join(errors)}). Set VAELAB_DATA_DIR to a folder holding "
            f"{self.source.__name__}/raw/*.gz (e.g. a copy made on a machine with a network).")

    def load(self):
        paths = self.files()
        train = read_idx(paths["train-images-idx3-ubyte.gz"]).float() / 255
        test = read_idx(paths["t10k-images-idx3-ubyte.gz"]).float() / 255
        train, val = split_off(train, self.val_size, self.val_split, self.seed)
        return train, val, test


class FashionMNIST(MNIST):
    """Zalando's 28x28 clothing images, the same layout and options as MNIST."""

    source = tvd.FashionMNIST
