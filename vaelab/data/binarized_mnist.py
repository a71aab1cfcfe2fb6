"""Larochelle & Murray's (2011) fixed binarisation of MNIST: 50k train, 10k validation, 10k test,
each pixel drawn once; the data set of the NADE, IWAE and VampPrior likelihood tables."""

from pathlib import Path

import numpy as np
import torch

from vaelab.data.base import InMemoryDataModule
from vaelab.data.files import absent, gunzip, verify

SPLITS = ("train", "valid", "test")
# sha256 of the .amat texts (TensorFlow Datasets' record of Larochelle's originals; an .amat.gz is
# checked after gunzip), and of the lossless uint8 .npz conversion (see shared/data/README.md).
KNOWN_SHA256 = {
    "binarized_mnist_train.amat": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    "binarized_mnist_valid.amat": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    "binarized_mnist_test.amat": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
    "binarized_mnist.npz": "350243cb824d66d022e0c3e87cac231231668817ff03f5f6d7b6533017d56b4b",
}
LINE = 2 * 784  # an .amat line: 784 digits, each followed by a space or, the last, a newline


def parse_amat(text: bytes) -> np.ndarray:
    """Rows of '0'/'1' separated by single spaces -> uint8 array [N, 784]."""
    return (np.frombuffer(text, np.uint8).reshape(-1, LINE)[:, ::2] - ord("0")).astype(np.uint8)


def read_text(path: Path) -> bytes:
    """An .amat file's text, gunzipped if it is an .amat.gz."""
    return gunzip(path) if path.suffix == ".gz" else path.read_bytes()


class BinarizedMNIST(InMemoryDataModule):
    """Files under ROOT/binarized_mnist/: binarized_mnist.npz (arrays train, valid, test) if present,
    else binarized_mnist_{train,valid,test}.amat(.gz); checked against KNOWN_SHA256. Already binary,
    so never binarised again."""

    event_shape = (28, 28)
    support = "binary"

    def __init__(self, root: str | Path | None = None, batch_size: int = 128):
        super().__init__(root, batch_size, binarize="none")

    @property
    def folder(self):
        return self.root / "binarized_mnist"

    def files(self) -> dict[str, Path]:
        """The files read, after checking their sha256: the .npz if present, else each split's .amat(.gz)."""
        npz = self.folder / "binarized_mnist.npz"
        if npz.exists():
            return {"npz": verify(npz, "sha256", KNOWN_SHA256[npz.name])}
        return {split: self.amat(split) for split in SPLITS}

    def amat(self, split) -> Path:
        """The split's .amat, or .amat.gz, after checking the sha256 of its text."""
        name = f"binarized_mnist_{split}.amat"
        for path in (self.folder / name, self.folder / f"{name}.gz"):
            if path.exists():
                return verify(path, "sha256", KNOWN_SHA256[name], content=read_text(path))
        raise absent("binarized MNIST", self.folder, f"binarized_mnist.npz or {name}(.gz)")

    def arrays(self):
        files = self.files()
        if "npz" in files:
            with np.load(files["npz"]) as f:
                return {split: f[split] for split in SPLITS}
        return {split: parse_amat(read_text(path)) for split, path in files.items()}

    def load(self):
        arrays = self.arrays()
        return tuple(torch.as_tensor(arrays[s], dtype=torch.float32).reshape(-1, 28, 28) for s in SPLITS)
