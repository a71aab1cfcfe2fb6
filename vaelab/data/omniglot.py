"""Omniglot at 28 x 28 (Lake et al. 2015): handwritten characters of 50 alphabets, the second data
set of the IWAE, VIMCO and DisARM tables; dynamically binarised by default."""

from pathlib import Path

import numpy as np
import scipy.io
import torch
import torchvision.datasets as tvd
from torchvision import transforms

from vaelab.data.base import VAL_SPLITS, InMemoryDataModule, check_held_out, split_off
from vaelab.data.files import absent, verify
from vaelab.errors import require

CHARDATA_MD5 = "21ecaf34373511aa7691cf2e0802aa3d"  # yburda/iwae's datasets/OMNIGLOT/chardata.mat
# torchvision's 105 x 105 PNGs, black strokes on white -> 28 x 28 stroke intensities in [0, 1]
TO_28 = transforms.Compose([transforms.Resize((28, 28)), transforms.ToTensor(), lambda x: 1 - x[0]])


def chardata_images(columns: np.ndarray) -> torch.Tensor:
    """chardata.mat stores each image as a column of 784 values in column-major (Fortran) pixel order."""
    return torch.as_tensor(columns.T.reshape(-1, 28, 28).transpose(0, 2, 1), dtype=torch.float32)


class Omniglot(InMemoryDataModule):
    """ROOT/omniglot/chardata.mat if present: the IWAE split (Burda et al. 2016), 24345 train and 8070
    test images, md5-checked. Otherwise, with `download` (or torchvision's zips already under
    ROOT/omniglot-py), torchvision's Omniglot resized to 28 x 28: the 19280 background images for
    training and the 13180 evaluation images for test, a different split from IWAE's.
    `val_size` training images (default 1345, as VampPrior and the DisARM code) are held out for validation: drawn by
    `seed` (val_split=random), or the last ones (val_split=last, as the DisARM code)."""

    event_shape = (28, 28)

    def __init__(self, root: str | Path | None = None, batch_size: int = 128, binarize: str = "dynamic",
                 val_size: int = 1345, download: bool = False, seed: int = 0, val_split: str = "random"):
        super().__init__(root, batch_size, binarize, seed)
        check_held_out(19280, "training images (torchvision's background set, the smaller)", val_size=val_size)
        require(val_split in VAL_SPLITS, "val_split", val_split, f"one of {', '.join(VAL_SPLITS)}")
        self.val_size, self.download, self.val_split = val_size, download, val_split

    @property
    def chardata(self):
        return self.root / "omniglot" / "chardata.mat"

    def zips(self) -> dict[str, Path]:
        """torchvision's Omniglot zips and their md5s, by path."""
        folder = self.root / tvd.Omniglot.folder
        return {folder / f"{name}.zip": md5 for name, md5 in tvd.Omniglot.zips_md5.items()}

    def files(self) -> dict[str, Path]:
        """chardata.mat after checking its md5; else torchvision's zips (downloaded first when absent and
        `download`), after checking theirs."""
        if self.chardata.exists():
            return {self.chardata.name: verify(self.chardata, "md5", CHARDATA_MD5)}
        if self.download and not all(path.exists() for path in self.zips()):
            for background in (True, False):
                tvd.Omniglot(str(self.root), background=background, download=True)
        if not all(path.exists() for path in self.zips()):
            raise absent("Omniglot", self.chardata.parent, self.chardata.name,
                         f", or allow dataset.download=true to fetch torchvision's Omniglot into "
                         f"{self.root / tvd.Omniglot.folder} (a different split from IWAE's)")
        return {path.name: verify(path, "md5", md5) for path, md5 in self.zips().items()}

    def load(self):
        if self.chardata.name in self.files():
            train, test = self.from_chardata()
        else:
            train, test = (self.from_torchvision(background) for background in (True, False))
        train, val = split_off(train, self.val_size, self.val_split, self.seed)
        return train, val, test

    def from_chardata(self):
        mat = scipy.io.loadmat(self.chardata, variable_names=["data", "testdata"])
        return chardata_images(mat["data"]), chardata_images(mat["testdata"])

    def from_torchvision(self, background: bool) -> torch.Tensor:
        images = tvd.Omniglot(str(self.root), background=background, transform=TO_28, download=self.download)
        return torch.stack([image for image, _ in images])
