"""Non-finite losses and gradients: stop the run (default) or skip the step."""

import lightning.pytorch as L
import torch

from vaelab.errors import require

POLICIES = ("stop", "skip")


class NonFiniteError(RuntimeError):
    """A training step produced a non-finite loss or gradient."""


class NonFinite(L.Callback):
    """Checks the loss and the gradients after backward, before the optimizer step.

    Cost: one device-to-host sync per step (the loss plus the gradients' total norm, tested by one
    `.item()`), and one fused norm over the gradients.
    `stop`: raise NonFiniteError naming the step and the objective; the step is not taken, so the
    parameters and the checkpoints on disk are the last good ones.
    `skip`: drop the step's gradients (the optimizer then leaves every parameter and its moments
    untouched) and count it, logged as train/skipped_steps.
    """

    def __init__(self, policy: str = "stop"):
        require(policy in POLICIES, "nonfinite", policy, f"one of {', '.join(POLICIES)}")
        self.policy, self.skipped, self.loss = policy, 0, None

    def on_before_backward(self, trainer, pl_module, loss):
        self.loss = loss.detach()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros_like(self.loss)
        if torch.isfinite(self.loss + norm).item():
            return
        if self.policy == "skip":
            optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            return
        objective = getattr(pl_module, "objective", pl_module)
        raise NonFiniteError(
            f"non-finite training step at step {trainer.global_step} (epoch {trainer.current_epoch}): "
            f"loss={self.loss.item()}, gradient norm={norm.item()}, objective {objective!r}. The step was "
            "not taken; checkpoints hold the last good state. Lower lr, or set nonfinite=skip to skip such steps.")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.policy == "skip":
            pl_module.log("train/skipped_steps", float(self.skipped))

    def state_dict(self):
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict):
        self.skipped = state_dict["skipped"]
