"""Score-function (REINFORCE) ELBO gradient (Williams 1992; Mnih & Gregor 2014; Kool et al. 2019)."""

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective, scored_draws
from vaelab.objectives.baselines import NVIL, LeaveOneOut, MovingAverage, NoBaseline

BASELINES = {"none": NoBaseline, "loo": LeaveOneOut, "ema": MovingAverage, "nvil": NVIL}


class Reinforce(Objective):
    """Encoder: grad_phi ELBO = E_q[(f(z, x) - b) grad_phi log q(z|x)], z ~ q detached;
    decoder (and a learned prior): grad_theta log p(x, z) at the same samples.

    `baseline`: none | loo (leave-one-out over the S samples) | ema (moving average of f) |
    nvil (learned b(x), see `baselines.NVIL`, trained by its surrogate); `decay`, `hidden`, `normalise` configure
    ema/nvil, whose running averages move on in `advance`. With nvil's `normalise` the encoder's gradient is the
    ELBO's divided by the running scale, a positive factor fixed within a step.
    """

    hierarchical = score_function = True

    def __init__(self, baseline: str = "loo", decay: float = 0.9, hidden: int = 100, normalise: bool = True):
        super().__init__()
        require(baseline in BASELINES, "loss.baseline", baseline, f"one of {', '.join(BASELINES)}")
        require(0 <= decay < 1, "loss.decay", decay, "a number in [0, 1)")
        require(hidden >= 1, "loss.hidden", hidden, "a positive number of hidden units")
        options = {"ema": dict(decay=decay), "nvil": dict(hidden=hidden, decay=decay, normalise=normalise)}
        self.baseline = BASELINES[baseline](**options.get(baseline, {}))

    @property
    def min_samples(self):
        return self.baseline.min_samples

    def forward(self, vae, x, S):
        _, log_q, log_joint = scored_draws(vae, x, S)
        f = (log_joint - log_q).detach()
        signal, surrogate, state = self.baseline(f, x)
        terms = {"encoder": -(signal * log_q).mean(), "decoder": -log_joint.mean()}
        return Estimate(loss=sum(terms.values()), elbo=f.mean(0), terms=terms, surrogate=surrogate, state=state)

    def advance(self, estimate):
        self.baseline.advance(estimate.state)
