"""Non-finite losses and gradients: stop the run (default) or skip the step."""

import itertools
import math

import lightning.pytorch as L
import torch

from vaelab.errors import require

POLICIES = ("stop", "skip")


HALF = ("16", "bf16")  # the prefixes of Lightning's half-precision settings: 16-mixed, 16-true, bf16-mixed, bf16-true


def advice(trainer, step: int) -> str:
    """The likely cause of a non-finite step and what to try: half precision (its range ends at 65504 for float16),
    the data or the model's start when the very first step fails, else too large a learning rate; then where the
    last good state is, naming only a checkpoint that was written."""
    precision = str(trainer.precision)
    optimizer = trainer.optimizers[0] if trainer.optimizers else None
    lr = optimizer.param_groups[0]["lr"] if optimizer is not None else None
    if precision.startswith(HALF):
        cause = f"trainer.precision={precision} is likely: try trainer.precision=32-true (or bf16-mixed on a GPU)"
    elif step == 0:
        cause = ("the first step failed, so the data or the model's start is likely: check the data's values against "
                 "the likelihood (NaN, out of range)")
    else:
        cause = f"lr={lr:g} is likely too large: lower it" if lr is not None else "a learning rate too large is likely"
    saved = [path for callback in trainer.checkpoint_callbacks
             for path in (callback.last_model_path, callback.best_model_path) if path]
    kept = f"{saved[0]} holds the last good state" if saved else "no checkpoint was written before it"
    return f"Cause: {cause}; or set nonfinite=skip to skip such steps. {kept[0].upper()}{kept[1:]}."


class NonFiniteError(RuntimeError):
    """A training step produced a non-finite loss or gradient."""


class NonFinite(L.Callback):
    """Checks the loss and each parameter's gradient sum after backward, before the optimizer step. A sum,
    accumulated in float32 whatever the precision (a float16 one overflows at 65504), is non-finite when an element
    is, or when it overflows, gradients of 1e38 being no better; it reads each gradient once, with no squares,
    where a norm would square every element first.

    Each step queues its loss and sums as one tensor on the device (one stack op beyond the sums); the host
    reads the queue, one synchronisation, every `every_n_steps` steps, before validation, before any
    checkpoint is written and when training ends.
    By default that is every step on the CPU, where reading costs nothing, and every `log_every_n_steps`
    steps on an accelerator, whose steps then never wait for the host (Lightning reads the device to log
    then anyway).
    `stop`: raise NonFiniteError naming the first bad step and the objective. Checked every step, that
    step is not taken; checked every n, the steps after it up to the check are, but no checkpoint holds them.
    `skip`: drop the step's gradients (the optimizer then leaves every parameter and its moments
    untouched) and count it, logged as train/skipped_steps; this needs the verdict before the step,
    so it reads the device every step.
    """

    def __init__(self, policy: str = "stop", every_n_steps: int | None = None):
        require(policy in POLICIES, "nonfinite", policy, f"one of {', '.join(POLICIES)}")
        require(every_n_steps is None or every_n_steps >= 1, "callbacks.nonfinite.every_n_steps", every_n_steps,
                "null (every step on the CPU, every log_every_n_steps on an accelerator) or a positive integer")
        self.policy, self.every_n_steps = policy, every_n_steps
        self.skipped, self.loss, self.pending = 0, None, []

    def interval(self, trainer):
        if self.policy == "skip":
            return 1
        if self.every_n_steps:
            return self.every_n_steps
        return 1 if trainer.strategy.root_device.type == "cpu" else trainer.log_every_n_steps

    def on_before_backward(self, trainer, pl_module, loss):
        self.loss = loss.detach()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        values = torch.stack([self.loss, *(p.grad.sum(dtype=torch.float32) for p in params)])  # promotes
        self.pending.append((trainer.global_step, trainer.current_epoch, params, values))
        if len(self.pending) >= self.interval(trainer):
            self.check(trainer, pl_module)

    def check(self, trainer, pl_module):
        """Read the queued steps (one synchronisation); act on the first non-finite one."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        values = iter(torch.cat([values for *_, values in pending]).tolist())
        for step, epoch, params, _ in pending:
            loss, *sums = itertools.islice(values, 1 + len(params))
            if math.isfinite(loss) and all(map(math.isfinite, sums)):
                continue
            if self.policy == "skip":
                pl_module.zero_grad(set_to_none=True)  # every gradient: a prior_optimizer's too
                self.skipped += 1
                return
            names = {p: name for name, p in pl_module.named_parameters()}
            bad = [names.get(p, "a parameter outside the module") for p, total in zip(params, sums, strict=True)
                   if not math.isfinite(total)]
            objective = getattr(pl_module, "objective", pl_module)
            raise NonFiniteError(
                f"non-finite training step at step {step} (epoch {epoch}): loss={loss}, non-finite gradients: "
                f"{', '.join(bad) or 'none'}; objective {objective!r}. {advice(trainer, step)}")

    def on_validation_start(self, trainer, pl_module):
        self.check(trainer, pl_module)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.check(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        self.check(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.policy == "skip":
            pl_module.log("train/skipped_steps", float(self.skipped))

    def state_dict(self):
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict):
        self.skipped = state_dict["skipped"]
