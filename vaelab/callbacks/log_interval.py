"""The trainer's logging interval, chosen so that every epoch logs unless the user set one."""

import lightning.pytorch as L

from vaelab.compat import set_log_interval


def batches_per_epoch(batches: int, limit) -> int:
    """Training batches an epoch runs: all of `batches`, `limit` of them (an int), or that fraction (a float)."""
    if limit is None:
        return batches
    return min(batches, limit) if isinstance(limit, int) else int(batches * limit)


class LogInterval(L.Callback):
    """Sets trainer.log_every_n_steps to min(`most`, training batches per epoch) when `every_n_steps` is None
    (trainer.log_every_n_steps=null): Lightning logs at global steps that are multiples of the interval, so an
    interval longer than an epoch leaves epochs, or a whole short run, with nothing logged."""

    def __init__(self, every_n_steps: int | None = None, most: int = 50):
        self.every_n_steps, self.most = every_n_steps, most

    def setup(self, trainer, pl_module, stage):
        if self.every_n_steps is not None or stage != "fit":
            return
        batches = batches_per_epoch(len(trainer.datamodule.train_dataloader()), trainer.limit_train_batches)
        set_log_interval(trainer, max(1, min(self.most, batches)))
