"""One dry call of a run's components on a tiny batch, before any work: a user's own objective or reference
distribution (a `_target_` node) that breaks the contract is refused in one line naming its node, instead of
failing at the first step or, worse, training on the wrong axis; and the optimiser, built once over one parameter,
is refused naming its key where torch would refuse it at the first step.

The call runs on copies of the model and the objective under a forked random stream, so that nothing the run
later does (its draws, a baseline's running average, a lazily built layer) depends on it.
"""

import copy

import torch
from torch import nn

from vaelab.errors import refused, said
from vaelab.objectives.base import Estimate
from vaelab.references import NAMED
from vaelab.rng import seeded
from vaelab.schema import constructed, plain


def target(component) -> str:
    return f"{type(component).__module__}.{type(component).__qualname__}"


def dry_batch(vae, S: int) -> torch.Tensor:
    """A batch of zeros of the data's shape, B = S + 1 (at least 2) data: a value every likelihood takes, and a
    batch size that no sample axis shares, so that a reduction over the wrong axis changes a shape."""
    parameter = next(vae.parameters())
    return torch.zeros(max(S + 1, 2), *vae.event_shape, dtype=parameter.dtype, device=parameter.device)


def check_components(vae: nn.Module, objective: nn.Module, S: int):
    """Call the objective (and its reference, if a user's) once on a tiny batch and check what comes back against
    the contract: Estimate.loss a finite-shaped scalar, Estimate.elbo one value a datum, a reference's draws
    [S, B, ...] and detached. Raises ConfigError naming the node (`loss`, `loss.reference`)."""
    vae, objective = copy.deepcopy(vae), copy.deepcopy(objective)
    x = dry_batch(vae, S)
    with seeded(0, x.device):
        reference = getattr(objective, "reference", None)
        if reference is not None and type(reference) not in NAMED.values():
            check_reference(reference, vae, x, S)
        try:
            estimate = objective(vae, x, S)
        except Exception as e:  # noqa: BLE001 - any failure of a user's code on a valid batch is the refusal
            raise refused("loss._target_", target(objective), f"an objective that runs: on a batch of {len(x)}, S={S}, "
                          f"it raised {said(e)}") from e
    ok = isinstance(estimate, Estimate) and torch.is_tensor(estimate.loss) and estimate.loss.dim() == 0
    if not ok or not torch.is_tensor(estimate.elbo) or tuple(estimate.elbo.shape) != (len(x),):
        shape = tuple(estimate.elbo.shape) if ok and torch.is_tensor(estimate.elbo) else None
        raise refused("loss._target_", target(objective), "an objective returning vaelab.objectives.Estimate with a "
                      f"scalar loss and the ELBO of each datum, shape [B] = [{len(x)}] (got {type(estimate).__name__}"
                      f"{f', elbo of shape {list(shape)}' if shape else ''})")


def check_reference(reference, vae, x, S: int):
    """A reference's `sample(vae, x, S)` gives detached draws of shape [S, B, ...], those of q(z|x)."""
    expected = tuple(vae.posterior(x).sample((S,)).shape)
    try:
        draws = reference.sample(vae, x, S)
    except Exception as e:  # noqa: BLE001 - any failure of a user's code on a valid batch is the refusal
        raise refused("loss.reference", target(reference), "a reference whose sample(vae, x, S) runs: it raised "
                      f"{said(e)}") from e
    z = getattr(draws, "z", None)
    shape = tuple(z.shape) if torch.is_tensor(z) else None
    if shape != expected:
        raise refused("loss.reference", target(reference), f"draws z of shape [S, B, ...] = {list(expected)} from "
                      f"sample(vae, x, S) (got {list(shape) if shape else type(draws).__name__})")
    if z.requires_grad:
        raise refused("loss.reference", target(reference), "detached draws from sample(vae, x, S): the variance "
                      "loss holds r fixed (z.requires_grad is True)")


def check_optimizers(cfg):
    """Build the configured optimiser and the prior's (`_partial_` nodes; None: the module's Adam, no prior's) once
    over a single parameter, and the learning-rate schedule over the optimiser, so that torch refuses what it cannot
    run (`++optimizer.lr=-1`, betas outside [0, 1), a schedule without its milestones) before any work, the refusal
    naming the key, as `lr=-1` is refused."""
    params = [nn.Parameter(torch.zeros(1))]
    built = {key: constructed(bare(cfg[key]), key, params=params)
             for key in ("optimizer", "prior_optimizer") if cfg.get(key) is not None}
    if cfg.get("scheduler") is not None:
        constructed(bare(cfg.scheduler), "scheduler", optimizer=built.get("optimizer") or torch.optim.Adam(params))


def bare(node) -> dict:
    """A `_partial_` node as a plain one, to be built with the arguments its code passes."""
    return {k: v for k, v in plain(node).items() if k != "_partial_"}
