"""Wall-clock time, logged so that curves can be read against it."""

from lightning.pytorch.callbacks import Timer


class WallClock(Timer):
    """Logs `time/elapsed`, seconds since training began (validation included), at every validation, so that
    curves can be read against wall-clock time and a sweep can report seconds per epoch."""

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            pl_module.log("time/elapsed", self.time_elapsed("train"))
