"""Faults a run meets outside vaelab's code, to inject through config: data that cannot be opened, a process killed."""

import os
import signal
from pathlib import Path

import lightning.pytorch as L


class UnreadableData:
    """A data module whose files cannot be opened: fails when built, with an error that is no refusal."""

    def __init__(self, **kwargs):
        raise OSError("the data disk went away")


class KilledAt(L.Callback):
    """SIGKILLs its own process at training step `step`, the first time only (a marker in the run folder says
    it happened): what a lost machine or an out-of-memory killer does to a run."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        marker = Path(trainer.default_root_dir) / "killed_once"
        if trainer.global_step == self.step and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
