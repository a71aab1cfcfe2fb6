"""Random states in checkpoints, so that a resumed run draws what an uninterrupted one would."""

import random

import lightning.pytorch as L
import numpy as np
import torch


class RNGState(L.Callback):
    """Keeps Python's, NumPy's and torch's (CPU and CUDA) random states in every checkpoint and restores
    them on resume, so a resumed run draws the same samples as one that was never stopped."""

    def state_dict(self):
        numpy = np.random.get_state(legacy=False)
        return {"python": random.getstate(), "numpy": {**numpy, "state": {
                    "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)), "pos": numpy["state"]["pos"]}},
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state_dict(self, state_dict):
        random.setstate(state_dict["python"])
        numpy = state_dict["numpy"]
        np.random.set_state({**numpy, "state": {"key": numpy["state"]["key"].numpy().astype(np.uint32),
                                                "pos": numpy["state"]["pos"]}})
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
