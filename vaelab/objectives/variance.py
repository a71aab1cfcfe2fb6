"""The variance loss (Stojanovič, "Variational Autoencoders with variance loss") over any reference distribution,
and VarGrad (Richter et al. 2020)."""

import math

import torch

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective, Scored, scored_draws
from vaelab.references import Posterior, from_config

DECODER_SIGNALS = ("variance", "elbo", "iwae")


class VarianceLoss(Objective):
    """L(x) = scale * Var_{z ~ r}[f(z, x)], the 1/(S-1) sample variance of f = log p(x, z) - log q(z|x) over S draws
    of a reference r(z|x) held fixed (detached draws; no density of r is needed), `reference`: a
    vaelab.references component, or its name (posterior, the default; prior; mixture with `mix`; tempered with
    `temperature`).

    Var_r f = 0 for every r when q(z|x) is the true posterior (f = log p(x) is then constant), and its expected
    encoder gradient is -2 scale E_r[(f - E_r f) grad log q]; for r = q, 2 scale grad KL(q || p(z|x)).
    `decoder="variance"` (Stojanovič's Algorithm 1): phi and theta both get grad L, through f.
    `decoder="elbo"` (VarGrad, scale 1/2): phi gets grad L with log p(x, z) detached (for r = q its mean is
    2 scale grad_phi KL(q || p(z|x)), which is grad_phi -ELBO at scale 1/2); theta and a learned prior get the ELBO
    gradient -grad E_q[log p(x, z)], which needs draws of q: the reference's own when r = q, else S draws of q of
    their own.
    `decoder="iwae"`: theta and a learned prior get the importance-weighted bound's gradient over those S draws
    of q, -grad log (1/S) sum_s p(x, z_s) / q(z_s|x).
    The ELBO reported is the mean of f at the S draws of q (the reference's own, or the extra ones).
    """

    hierarchical = score_function = True
    encoder_objective = "variance"

    def __init__(self, decoder: str = "variance", scale: float = 1.0, reference="posterior",
                 mix: float = 0.5, temperature: float = 2.0):
        super().__init__()
        require(decoder in DECODER_SIGNALS, "loss.decoder", decoder, f"one of {', '.join(DECODER_SIGNALS)}")
        require(scale > 0, "loss.scale", scale, "a positive number")
        self.decoder, self.scale = decoder, scale
        self.decoder_objective = decoder
        self.reference = from_config(reference, mix, temperature)

    @property
    def min_samples(self):
        return 2

    def problems(self, kind, S, depth=1):
        return super().problems(kind, S, depth) + self.reference.problems(kind)

    def forward(self, vae, x, S):
        draws = self.reference.sample(vae, x, S)
        log_joint, log_q = vae.log_joint(x, draws.z), draws.q.log_prob(draws.z)
        on_q = isinstance(self.reference, Posterior)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.decoder != "variance"):
            at_q = Scored(draws.z, log_q, log_joint) if on_q else scored_draws(vae, x, S, draws.q)
        elbo = (at_q.log_joint - at_q.log_q).detach().mean(0)
        if self.decoder == "variance":
            variance = (log_joint - log_q).var(0)
            return Estimate(loss=self.scale * variance.mean(), elbo=elbo, metrics={"variance": variance.detach().mean()})
        variance = (log_joint.detach() - log_q).var(0)
        metrics = {"variance": variance.detach().mean()}
        if self.decoder == "elbo":
            decoder = -at_q.log_joint.mean()
        else:
            bound = torch.logsumexp(at_q.log_joint - at_q.log_q.detach(), 0) - math.log(S)
            decoder, metrics["iwae"] = -bound.mean(), bound.detach().mean()
        terms = {"encoder": self.scale * variance.mean(), "decoder": decoder}
        return Estimate(loss=sum(terms.values()), elbo=elbo, metrics=metrics, terms=terms)
