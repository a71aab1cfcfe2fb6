"""Measurements drawn under their own seed on fixed inputs, leaving the training random stream where it was."""

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, device: torch.device):
    """Within: the global RNG (CPU, and `device` when it is a GPU) starts at `seed`; on exit both are restored."""
    device = torch.device(device)
    gpu = device.type != "cpu"
    with torch.random.fork_rng(devices=[device] if gpu else [], device_type=device.type if gpu else "cuda"):
        torch.manual_seed(seed)
        yield


def fixed_batch(datamodule, n: int, seed: int = 0):
    """The first `n` validation examples: the same inputs for every run on this data (the loader's seeding is forked off)."""
    datamodule.setup("validate")
    with seeded(seed, torch.device("cpu")):
        return next(iter(datamodule.val_dataloader()))[:n]
