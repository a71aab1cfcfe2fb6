"""Callbacks that log what Lightning measures but does not log."""

from lightning.pytorch.callbacks import Timer


class WallClock(Timer):
    """Logs `time/elapsed`, seconds since training began (validation included), at every validation, so that
    curves can be read against wall-clock time and a sweep can report seconds per epoch."""

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            pl_module.log("time/elapsed", self.time_elapsed("train"))


def configured(callbacks, trainer) -> list:
    """The configs of a run's callbacks: every one in the callbacks group, except the progress bar where
    trainer.enable_progress_bar is false (Lightning refuses a progress bar callback then)."""
    return [c for name, c in callbacks.items() if name != "progress_bar" or trainer.enable_progress_bar]
