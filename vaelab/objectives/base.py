"""The objective contract.

An objective is an `nn.Module` (so baselines, running averages, temperatures and learned control variates are
checkpointed and moved with the model). One call per training step:

    estimate = objective(vae, x, S)

draws all S samples at once (shape [S, B, ...]) and returns the loss to backpropagate, the ELBO per datum
(detached; the same quantity for every objective, so curves compare) and any extra metrics. An objective that
gives the encoder one signal and the decoder another also returns each routed term (`terms`, summing to `loss`),
built with the other side detached. log p(x, z) comes from `vae.log_joint(x, z)`, the one place it is computed.

An objective that learns has parameters of its own (a control variate's network, a relaxation's temperature). The
optimiser puts them in a group of their own at learning rate `lr` (None: the model's). They are trained by
`loss + surrogate`: `Estimate.surrogate` is a scalar whose gradient reaches only them, such as the gradient-variance
surrogate sum g^2 of a control variate, built from a gradient estimate g made differentiable in the objective's
parameters (a double backward: d/dpsi E[g^2] = E[2 g dg/dpsi]) with the model's side held fixed; the encoder and
decoder receive exactly the gradient of `loss`. State that is not trained by gradients (running averages, a
temperature schedule) changes only in `advance(estimate)`, which the training loop calls after each optimiser step
with the step's `Estimate.state` (detached statistics); `forward` never changes it, so evaluating an objective (for
gradient diagnostics, say) leaves it as it was.

What a new estimator declares (class attributes, or set in `__init__` where an option decides them); the refusals,
the collapse check, the benchmark grid and tests/objectives/test_conformance.py read nothing else:
- `latents`: the latent kinds it trains, a subset of LATENT_KINDS (all by default);
- `min_samples`: its least S (1 by default); override `problems` for any other condition (an even S, say);
- `hierarchical`: True where it trains latents of several stochastic layers (False by default; False where it
  reads one layer's parameters or needs a closed form that L > 1 layers lack);
- `score_function`: True where the encoder learns from a score-function estimate (False by default);
- `encoder_objective`, `decoder_objective`: what the mean gradient of `loss` is, for the encoder and for the
  decoder (with a learned prior), one of TARGETS:
    "elbo": -grad ELBO;  "iwae": -grad E[log (1/S) sum_s w_s] at the S of the call;
    "variance": grad of scale x Var_{z ~ r} f(z, x), r the objective's reference held fixed and `scale` its
    attribute ("elbo" by default; the decoder's is what the collapse check asks about);
- `biased`: True where the encoder's mean gradient is not that of its target (a relaxation's; the decoder's may be
  biased too): the conformance test then checks that it differs, and the docstring says how (False by default);
- `lr`: the learning rate of its own parameters (None: the model's).
"""

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

LATENT_KINDS = ("continuous", "discrete", "binary")
TARGETS = ("elbo", "iwae", "variance")


@dataclass
class Estimate:
    loss: torch.Tensor
    elbo: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    surrogate: torch.Tensor | None = None
    state: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """Base class: subclasses set the declarations of the module docstring and implement `forward`; an objective
    with running state implements `advance`."""

    latents: tuple[str, ...] = LATENT_KINDS
    hierarchical: bool = False
    score_function: bool = False
    encoder_objective: str = "elbo"
    decoder_objective: str = "elbo"
    biased: bool = False
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

    def advance(self, estimate: Estimate) -> None:
        """Move running state on by one training step, from `estimate.state`; after the optimiser step."""


class Scored(NamedTuple):
    """S draws z ~ q(z|x), detached, and at each: log q(z|x) and log p(x, z), each [S, B]."""

    z: torch.Tensor
    log_q: torch.Tensor
    log_joint: torch.Tensor


def scored_draws(vae, x, S: int, q=None) -> Scored:
    """Draw z ~ q(z|x) (q given, or the encoder's), S at once and detached, with log q(z|x) and log p(x, z)."""
    q = vae.posterior(x) if q is None else q
    z = q.sample((S,))
    return Scored(z, q.log_prob(z), vae.log_joint(x, z))
