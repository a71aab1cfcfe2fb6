"""Reference distributions r(z|x) for the variance loss L = Var_{z ~ r}[f(z, x)].

The loss holds r fixed and needs only its draws, never its density, so any distribution that can be sampled
will do. A reference is a small component, built by Hydra `_target_` like the objectives:

    draws = reference.sample(vae, x, S)    # draws.z: [S, B, ...], detached; draws.q: q(z|x), differentiable

`draws.q` is the posterior the loss takes log q(z|x) from (one encoder pass serves both). A reference that
cannot sample some latent kinds lists the ones it can in `latents`, so that a bad pair is refused before work.
A new reference subclasses `Reference` and is given as `loss.reference={_target_: my.module.MyReference}`.
"""

from dataclasses import dataclass
from numbers import Real

import torch
from torch.distributions import Distribution

from vaelab.errors import require

A_PROBABILITY = "a probability in [0, 1]"
A_TEMPERATURE = "a positive temperature"


def is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


@dataclass
class Draws:
    z: torch.Tensor       # [S, B, ...] from r, detached
    q: Distribution       # q(z|x), batch shape [B], with the encoder's graph


class Reference:
    """Base class: subclasses implement `sample`; `latents` (None: any kind) names the latent kinds it can sample."""

    name = "reference"
    latents: tuple[str, ...] | None = None

    def problems(self, kind: str) -> list[str]:
        """Why this reference cannot sample latent `kind` (empty when it can)."""
        if self.latents is None or kind in self.latents:
            return []
        return [f"loss.reference={self.name} cannot sample latent={kind} (it can: {', '.join(self.latents)})"]

    def sample(self, vae, x, S: int) -> Draws:
        raise NotImplementedError


class Posterior(Reference):
    """r = q(z|x), detached: the variance loss as first defined, and the default."""

    name = "posterior"

    def sample(self, vae, x, S):
        q = vae.posterior(x)
        return Draws(q.sample((S,)), q)


class Prior(Reference):
    """r = p(z), detached; for a learned prior too: its draws carry no gradient (its log p(z) inside f does)."""

    name = "prior"

    def sample(self, vae, x, S):
        q = vae.posterior(x)
        return Draws(vae.prior().sample((S, *q.batch_shape)), q)


class Mixture(Reference):
    """r = mix q(z|x) + (1 - mix) p(z): each of the S x B draws from q with probability `mix`, else from the prior."""

    name = "mixture"

    def __init__(self, mix: float = 0.5):
        require(is_number(mix) and 0 <= mix <= 1, "mix", mix, A_PROBABILITY)
        self.mix = mix

    def sample(self, vae, x, S):
        q = vae.posterior(x)
        from_q, from_prior = q.sample((S,)), vae.prior().sample((S, *q.batch_shape))
        batch = from_q.shape[:from_q.dim() - len(q.event_shape)]
        pick = torch.rand(batch, device=from_q.device) < self.mix
        return Draws(torch.where(pick.reshape(*batch, *[1] * len(q.event_shape)), from_q, from_prior), q)


class Tempered(Reference):
    """r = q(z|x) at a temperature: logits / temperature (discrete, binary), scale * temperature (continuous);
    temperature > 1 flattens q, < 1 sharpens it. Needs the latent's `tempered`."""

    name = "tempered"
    latents = ("continuous", "discrete", "binary")

    def __init__(self, temperature: float = 2.0):
        require(is_number(temperature) and temperature > 0, "temperature", temperature, A_TEMPERATURE)
        self.temperature = temperature

    def sample(self, vae, x, S):
        q = vae.posterior(x)
        return Draws(vae.latent.tempered(q, self.temperature).sample((S,)), q)


NAMED = {"posterior": Posterior, "prior": Prior, "mixture": Mixture, "tempered": Tempered}


def from_config(reference, mix, temperature) -> Reference:
    """The loss config's `reference` as a component: a built Reference (a `_target_` node) as it is, or one of
    NAMED, with `loss.mix` for the mixture and `loss.temperature` for the tempered posterior. Every key is
    checked whichever reference is named, so that a typo in one never waits for the run that uses it."""
    if isinstance(reference, Reference):
        return reference
    require(isinstance(reference, str) and reference in NAMED, "loss.reference", reference,
            f"one of {', '.join(NAMED)}, or a node with a _target_ subclassing vaelab.references.Reference")
    require(is_number(mix) and 0 <= mix <= 1, "loss.mix", mix, A_PROBABILITY)
    require(is_number(temperature) and temperature > 0, "loss.temperature", temperature, A_TEMPERATURE)
    if reference == "mixture":
        return Mixture(mix)
    if reference == "tempered":
        return Tempered(temperature)
    return NAMED[reference]()
