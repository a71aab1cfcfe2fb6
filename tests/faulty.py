"""Faults to inject through config, e.g. `loss._target_=tests.faulty.NaNAt +loss.steps=[4]`."""

from vaelab.objectives import ELBO
from vaelab.references import Draws, Reference


class NaNAt(ELBO):
    """The pathwise ELBO, except that its loss is NaN at the training steps (0-based calls) listed in `steps`."""

    def __init__(self, steps=(), analytic_kl: bool = True):
        super().__init__(analytic_kl)
        self.steps, self.calls = set(steps), 0

    def forward(self, vae, x, S):
        estimate = super().forward(vae, x, S)
        if self.calls in self.steps:
            estimate.loss = estimate.loss * float("nan")
        self.calls += 1
        return estimate


class BatchFirstReference(Reference):
    """A user's reference that breaks the contract: draws of q laid out [B, S, ...] instead of [S, B, ...], so that
    the variance loss would take its variance over the batch."""

    def sample(self, vae, x, S):
        q = vae.posterior(x)
        return Draws(q.sample((S,)).transpose(0, 1), q)


class NoSample(Reference):
    """A user's reference without its `sample` method."""


class NoElbo(ELBO):
    """A user's objective that returns the loss alone, not an Estimate."""

    def forward(self, vae, x, S):
        return super().forward(vae, x, S).loss


class NeedsWidth(BatchFirstReference):
    """A user's reference whose constructor requires an argument, `width`, that a config may leave out."""

    def __init__(self, width: int):
        self.width = width


class BadWidth(NeedsWidth):
    """A user's reference whose constructor raises TypeError on a value its signature lets through."""

    def __init__(self, width: int = 1):
        super().__init__(width + "")


class NeedsModule(ELBO):
    """A user's objective whose constructor imports a module that is not installed."""

    def __init__(self, analytic_kl: bool = True):
        import vaelab_nowhere  # noqa: F401

        super().__init__(analytic_kl)
