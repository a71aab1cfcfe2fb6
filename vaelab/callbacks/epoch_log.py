"""One line per training epoch through Python logging, so that a run piped to a file (SLURM, nohup) says how
it is going, and the line lands in the run's Hydra log (RUN/train.log) too."""

import logging
import time

import lightning.pytorch as L

from vaelab.metrics.collapse import signs

log = logging.getLogger("vaelab")
KEYS = ("train/elbo", "val/elbo")


class EpochLog(L.Callback):
    """At each training epoch's end (after its validation) logs epoch, global step, the last train/elbo and
    the val/elbo, the epoch's wall-clock seconds, and the signs of posterior collapse once they show, e.g.

        epoch 3/10  step 33  train/elbo -120.31  val/elbo -118.20  1.9 s
        epoch 4/10  step 44  train/elbo -160.02  val/elbo -159.87  1.9 s  posterior collapse: no active units
    """

    def __init__(self):
        self.start = None

    def on_train_start(self, trainer, pl_module):
        """A run resumed mid-epoch starts there without an epoch start: its first line counts from here."""
        self.start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        logged = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}", f"step {trainer.global_step}"]
        parts += [f"{key} {logged[key].item():.2f}" for key in KEYS if key in logged]
        parts.append(f"{time.perf_counter() - self.start:.1f} s")
        found = signs(logged, pl_module.vae.latent, "val")
        if found:
            parts.append(f"posterior collapse: {found}")
        log.info("  ".join(parts))
