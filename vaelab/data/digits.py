"""The 8x8 digits that scikit-learn ships: 1797 images, usable anywhere offline."""

import torch
from sklearn.datasets import load_digits

from vaelab.data.base import InMemoryDataModule, held_out


class Digits(InMemoryDataModule):
    """Pixels 0..16 scaled to [0, 1]; a seeded split into `val_size` and `test_size` and the rest for training."""

    event_shape = (8, 8)

    def __init__(self, root=None, batch_size=128, binarize="dynamic", val_size: int = 200,
                 test_size: int = 300, seed: int = 0):
        super().__init__(root, batch_size, binarize, seed)
        self.val_size, self.test_size = val_size, test_size

    def load(self):
        x = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16
        train, test, val = held_out(x, self.seed, self.test_size, self.val_size)
        return train, val, test
