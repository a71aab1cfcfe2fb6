"""Faults to inject through config, e.g. `loss._target_=tests.faulty.NaNAt +loss.steps=[4]`."""

from vaelab.objectives import ELBO


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
