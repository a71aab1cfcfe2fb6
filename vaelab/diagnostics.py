"""Gradient diagnostics: how noisy each estimator's gradient is, for the encoder and the decoder.

From R independent draws g_1..g_R of the gradient of the current objective on one fixed batch:
norm = ||mean_r g_r||, variance = tr Cov(g) = sum_p Var_r(g_rp) (1/(R-1)), and
snr = mean_p |mean_r g_rp| / std_r(g_rp). Every step, from the training gradient itself: the running
variance sum_p (v_p - m_p^2) of exponential moving averages m = EMA(g), v = EMA(g^2).
"""

import copy

import lightning.pytorch as L
import torch

from vaelab.errors import require
from vaelab.rng import fixed_batch, seeded

PARTS = ("encoder", "decoder")


def flat_grad(value, params):
    """d value / d params as one vector (zeros where value does not depend on a parameter)."""
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])


def gradient_draws(objective, vae, x, S: int, draws: int, part: str = "encoder", term: str | None = None):
    """`draws` independent gradients of objective(vae, x, S).loss (or of one routed term) for vae.<part>'s
    parameters, [draws, P]."""
    params = [p for p in getattr(vae, part).parameters() if p.requires_grad]
    rows = []
    for _ in range(draws):
        estimate = objective(vae, x, S)
        rows.append(flat_grad(estimate.terms[term] if term else estimate.loss, params))
    return torch.stack(rows)


def gradient_statistics(draws: torch.Tensor, eps: float = 1e-12) -> dict[str, torch.Tensor]:
    """norm of the mean, trace of the covariance and mean SNR of gradient draws [R, P]."""
    mean, std = draws.mean(0), draws.std(0)
    return {"norm": mean.norm(), "variance": (std**2).sum(), "snr": (mean.abs() / (std + eps)).mean()}


class GradientDiagnostics(L.Callback):
    """Every `every_n_steps`, R = `draws` gradient draws on a fixed batch (the first `batch_size` validation
    examples, seed `seed`: the same for every estimator) logged as grad/<part>/{norm,variance,snr};
    every step grad/<part>/running_variance with EMA decay `decay` (both moments start at the first gradient).
    The R draws are logged straight to the loggers (one host sync per measurement); the running variance stays
    on the device and goes out with Lightning's logging.

    Leaves training as it was: the draws use their own seed (the training RNG is restored), gradients are
    taken with autograd.grad (parameter .grad untouched), and the objective's state (baselines, running
    averages) is restored after.
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
        state = copy.deepcopy(pl_module.objective.state_dict())
        metrics = {}
        with seeded(self.seed, pl_module.device):
            for part in PARTS:
                draws = gradient_draws(pl_module.objective, pl_module.vae, self.batch, pl_module.S, self.draws, part)
                metrics |= {f"grad/{part}/{name}": float(v) for name, v in gradient_statistics(draws).items()}
        pl_module.objective.load_state_dict(state)
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
