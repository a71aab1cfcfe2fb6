"""The progress bar: Lightning's, showing the training metrics without reading them back every step."""

from collections.abc import Sequence

from lightning.pytorch.callbacks import TQDMProgressBar

from vaelab.errors import require


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar, also showing the last logged value of each of `metrics`.

    Logged with prog_bar=True instead, a training metric is read back from the device by Lightning at the end of
    every later batch of the epoch, a host synchronisation a step on a GPU; read here, it is read when the bar
    refreshes, every `refresh_rate` batches (None: the trainer's log_every_n_steps, the steps that log it).
    """

    def __init__(self, refresh_rate: int | None = None, metrics: Sequence[str] = ("train/loss", "train/elbo")):
        require(isinstance(metrics, Sequence) and not isinstance(metrics, str)
                and all(isinstance(name, str) for name in metrics),
                "callbacks.progress_bar.metrics", metrics, "a list of logged metric names, e.g. [train/loss]")
        super().__init__(refresh_rate or 1)
        self.every, self.metrics = refresh_rate, tuple(metrics)

    @property
    def refresh_rate(self) -> int:
        return self.every or self.trainer.log_every_n_steps

    def get_metrics(self, trainer, pl_module):
        logged = trainer.callback_metrics
        shown = {name: logged[name].item() for name in self.metrics if name in logged}
        return {**shown, **super().get_metrics(trainer, pl_module)}
