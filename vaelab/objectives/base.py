"""The objective contract.

An objective is an `nn.Module` (so baselines, running averages and temperatures are checkpointed
and moved with the model). One call per training step:

    estimate = objective(vae, x, S)

draws all S samples at once (shape [S, B, ...]) and returns the loss to backpropagate, the
ELBO per datum (detached; the same quantity for every objective, so curves compare) and any
extra metrics. An objective that gives the encoder one signal and the decoder another also
returns each routed term (`terms`, summing to `loss`), built with the other side detached.
An objective declares the latent kinds it supports, its least S and whether it trains latents of several
stochastic layers (`hierarchical`); `problems` says why a pair cannot train, so that a bad pair is refused
before training starts.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

LATENT_KINDS = ("continuous", "discrete", "binary")


@dataclass
class Estimate:
    loss: torch.Tensor
    elbo: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    surrogate: torch.Tensor | None = None


class Objective(nn.Module):
    """Base class: subclasses set `latents`, may override `min_samples` and `hierarchical` (False where the
    estimator reads one layer's parameters or needs a closed form that L > 1 layers lack), and implement `forward`."""

    latents: tuple[str, ...] = LATENT_KINDS
    hierarchical: bool = True
    score_function: bool = False
    lr: float | None = None

    @property
    def min_samples(self) -> int:
        return 1

    def problems(self, kind: str, S: int, depth: int = 1) -> list[str]:
        """Why this objective cannot train latent `kind` of `depth` stochastic layers with S samples (empty when it can)."""
        found = []
        if kind not in self.latents:
            found.append(f"latent={kind} is not supported (supported: {', '.join(self.latents)})")
        if depth > 1 and not self.hierarchical:
            found.append(f"L={depth} stochastic layers are not supported (L = 1 only)")
        if S < self.min_samples:
            found.append(f"S={S} is below its least S, {self.min_samples}")
        return found

    def forward(self, vae, x, S: int) -> Estimate:
        raise NotImplementedError


def score_function_terms(vae, x, S: int):
    """Draw z ~ q(z|x), S at once and detached: return log q(z|x) and log p(x, z), each [S, B]."""
    q = vae.posterior(x)
    z = q.sample((S,))
    return q.log_prob(z), vae.log_likelihood(x, z) + vae.prior().log_prob(z)
