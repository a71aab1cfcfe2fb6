"""Gradient diagnostics logged during training: each estimator's gradient noise, encoder and decoder."""

import lightning.pytorch as L
import torch

from vaelab.errors import require
from vaelab.metrics.gradients import gradient_draws, gradient_statistics
from vaelab.rng import fixed_batch, seeded

PARTS = ("encoder", "decoder")


class GradientDiagnostics(L.Callback):
    """Every `every_n_steps`, R = `draws` gradient draws on a fixed batch (the first `batch_size` validation
    examples, seed `seed`: the same for every estimator) logged as grad/<part>/{norm,variance,snr};
    every step grad/<part>/running_variance with EMA decay `decay` (both moments start at the first gradient).
    The R draws are logged straight to the loggers (one host sync per measurement); the running variance stays
    on the device and goes out with Lightning's logging.

    Leaves training as it was: the draws use their own seed (the training RNG is restored), gradients are
    taken with autograd.grad (parameter .grad untouched), and an objective's state (baselines' running averages,
    temperatures) changes only in its `advance`, which the draws never call.
    """

    def __init__(self, every_n_steps: int = 100, draws: int = 16, batch_size: int = 64, seed: int = 0,
                 decay: float = 0.99):
        require(every_n_steps >= 1, "callbacks.diagnostics.every_n_steps", every_n_steps, "a positive integer")
        require(draws >= 2, "callbacks.diagnostics.draws", draws, "at least 2 draws, for a variance")
        require(batch_size >= 1, "callbacks.diagnostics.batch_size", batch_size, "a positive integer")
        require(0 < decay < 1, "callbacks.diagnostics.decay", decay, "a number in (0, 1)")
        self.every_n_steps, self.draws, self.batch_size, self.seed, self.decay = every_n_steps, draws, batch_size, seed, decay
        self.batch, self.moments = None, {}

    def on_train_start(self, trainer, pl_module):
        self.batch = fixed_batch(trainer.datamodule, self.batch_size, self.seed).to(pl_module.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % self.every_n_steps:
            return
        metrics = {}
        with seeded(self.seed, pl_module.device):
            for part in PARTS:
                draws = gradient_draws(pl_module.objective, pl_module.vae, self.batch, pl_module.S, self.draws, part)
                metrics |= {f"grad/{part}/{name}": float(v) for name, v in gradient_statistics(draws).items()}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        for part in PARTS:
            grads = [p.grad.flatten() for p in getattr(pl_module.vae, part).parameters() if p.grad is not None]
            if not grads:
                continue
            g = torch.cat(grads).detach()
            m, v = self.moments.get(part, (g, g**2))
            m, v = torch.lerp(m, g, 1 - self.decay), torch.lerp(v, g**2, 1 - self.decay)
            self.moments[part] = m, v
            pl_module.log(f"grad/{part}/running_variance", (v - m**2).sum())
