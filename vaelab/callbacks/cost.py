"""Cost of training: seconds per step and examples per second."""

import time

import lightning.pytorch as L


class Cost(L.Callback):
    """Logs cost/sec_per_step and cost/examples_per_sec every `every_n_steps` training steps
    (default: the trainer's log_every_n_steps), wall-clock averages over those steps with validation left out.

    Lightning's ThroughputMonitor synchronises the GPU every step; an average over many steps needs
    no synchronisation, since the host cannot run further ahead of the device than its queue allows.
    """

    def __init__(self, every_n_steps: int | None = None):
        self.every_n_steps = every_n_steps
        self.reset()

    def reset(self):
        self.elapsed, self.steps, self.examples, self.mark = 0.0, 0, 0, None

    def pause(self):
        if self.mark is not None:
            self.elapsed += time.perf_counter() - self.mark
            self.mark = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.mark is None:
            self.mark = time.perf_counter()

    def on_validation_start(self, trainer, pl_module):
        self.pause()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps += 1
        self.examples += len(batch)
        if self.steps < (self.every_n_steps or trainer.log_every_n_steps):
            return
        self.pause()
        metrics = {"cost/sec_per_step": self.elapsed / self.steps, "cost/examples_per_sec": self.examples / self.elapsed}
        pl_module.log_dict(metrics)
        self.reset()
