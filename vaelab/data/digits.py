"""The 8x8 digits that scikit-learn ships: 1797 images, usable anywhere offline."""

from pathlib import Path

import torch
from sklearn.datasets import load_digits

from vaelab.data.base import InMemoryDataModule, check_held_out, held_out

IMAGES = 1797


class Digits(InMemoryDataModule):
    """Pixels 0..16 scaled to [0, 1]; a seeded split into `val_size` and `test_size` and the rest for training."""

    event_shape = (8, 8)

    def __init__(self, root: str | Path | None = None, batch_size: int = 128, binarize: str = "dynamic",
                 val_size: int = 200, test_size: int = 300, seed: int = 0):
        super().__init__(root, batch_size, binarize, seed)
        check_held_out(IMAGES, "images", val_size=val_size, test_size=test_size)
        self.val_size, self.test_size = val_size, test_size

    def load(self):
        x = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16
        train, test, val = held_out(x, self.seed, self.test_size, self.val_size)
        return train, val, test
