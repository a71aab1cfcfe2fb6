"""Score-function (REINFORCE) ELBO gradient (Williams 1992; Mnih & Gregor 2014)."""

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective, score_function_terms
from vaelab.objectives.baselines import LeaveOneOut, NoBaseline

BASELINES = {"none": NoBaseline, "loo": LeaveOneOut}


class Reinforce(Objective):
    """Encoder: grad_phi ELBO = E_q[(f(z, x) - b) grad_phi log q(z|x)], z ~ q detached;
    decoder (and a learned prior): grad_theta log p(x, z) at the same samples.
    """

    def __init__(self, baseline: str = "loo"):
        super().__init__()
        require(baseline in BASELINES, "loss.baseline", baseline, f"one of {', '.join(BASELINES)}")
        self.baseline = BASELINES[baseline]()

    @property
    def min_samples(self):
        return self.baseline.min_samples

    def forward(self, vae, x, S):
        log_q, log_joint = score_function_terms(vae, x, S)
        f = (log_joint - log_q).detach()
        signal = f - self.baseline(f, x)
        terms = {"encoder": -(signal * log_q).mean(), "decoder": -log_joint.mean()}
        return Estimate(loss=sum(terms.values()), elbo=f.mean(0), terms=terms)
