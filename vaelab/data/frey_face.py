"""Brendan Frey's faces: 1965 gray images of 28 x 20, the continuous data set of the VAE paper
(Kingma & Welling 2014), modelled with a Gaussian likelihood."""

import hashlib
from pathlib import Path

import numpy as np
import scipy.io
import torch

from vaelab.data.base import InMemoryDataModule, check_held_out, held_out
from vaelab.data.files import CorruptFile, absent

# sha256 of the pixels, ff as a C-order uint8 (560, 1965) array: the .mat container's bytes differ
# between copies (shared/data's was rebuilt with scipy.io.savemat from two identical independent copies of
# the pixels; see its README), the pixels do not. Computed from that copy.
PIXELS_SHA256 = "fbd70c2c992104024a20f4d253da1a1132eb6bf8ed142dccbe7d2b1743b705c4"


class FreyFace(InMemoryDataModule):
    """ROOT/frey_face/frey_rawface.mat, variable ff: uint8 (560, 1965), one image per column in
    row-major 28 x 20 order; scaled by 1/255 to [0, 1]; a split fixed by `seed` into `val_size`,
    `test_size` and the rest for training."""

    event_shape = (28, 20)
    likelihood = "gaussian"

    def __init__(self, root: str | Path | None = None, batch_size: int = 100, binarize: str = "none",
                 val_size: int = 200, test_size: int = 200, seed: int = 0):
        super().__init__(root, batch_size, binarize, seed)
        check_held_out(1965, "faces", val_size=val_size, test_size=test_size)
        self.val_size, self.test_size = val_size, test_size

    @property
    def path(self):
        return self.root / "frey_face" / "frey_rawface.mat"

    def files(self) -> dict[str, Path]:
        """The .mat file, after checking its pixels against PIXELS_SHA256."""
        self.pixels()
        return {self.path.name: self.path}

    def pixels(self) -> np.ndarray:
        """ff, after checking its content against PIXELS_SHA256."""
        if not self.path.exists():
            raise absent("Frey Face", self.path.parent, self.path.name)
        try:
            ff = scipy.io.loadmat(self.path, variable_names=["ff"]).get("ff")
        except (ValueError, OSError, TypeError) as e:
            raise CorruptFile(f"{self.path} is corrupted or truncated: scipy.io.loadmat fails ({e}). "
                              "Replace the file.") from e
        if ff is None or ff.dtype != np.uint8 or ff.shape != (560, 1965):
            raise CorruptFile(f"{self.path} holds no uint8 (560, 1965) variable ff. Replace the file.")
        found = hashlib.sha256(np.ascontiguousarray(ff).tobytes()).hexdigest()
        if found != PIXELS_SHA256:
            raise CorruptFile(f"{self.path} is corrupted: the sha256 of its pixels is {found}, not the known "
                              f"{PIXELS_SHA256}. Replace the file.")
        return ff

    def load(self):
        x = torch.as_tensor(self.pixels().T.reshape(-1, 28, 20), dtype=torch.float32) / 255
        return held_out(x, self.seed, self.val_size, self.test_size)
