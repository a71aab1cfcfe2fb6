"""The variance loss (Stojanovič, "Variational Autoencoders with variance loss") and VarGrad (Richter et al. 2020)."""

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective, score_function_terms

DECODER_SIGNALS = ("variance", "elbo")


class VarianceLoss(Objective):
    """L(x) = scale * Var_{z ~ q, detached}[f(z, x)], the 1/(S-1) sample variance over S draws.

    Var f = 0 exactly when q(z|x) is the true posterior; no reparameterisation is needed.
    `decoder="variance"` (Stojanovič's Algorithm 1): phi and theta both get grad L, through f.
    `decoder="elbo"` (VarGrad, scale 1/2): phi gets grad L with log p(x, z) detached, whose mean
    equals grad_phi -ELBO; theta gets the ELBO gradient -grad_theta E[log p(x, z)].
    """

    def __init__(self, decoder: str = "variance", scale: float = 1.0):
        super().__init__()
        require(decoder in DECODER_SIGNALS, "loss.decoder", decoder, f"one of {', '.join(DECODER_SIGNALS)}")
        require(scale > 0, "loss.scale", scale, "a positive number")
        self.decoder, self.scale = decoder, scale

    @property
    def min_samples(self):
        return 2

    def forward(self, vae, x, S):
        log_q, log_joint = score_function_terms(vae, x, S)
        f = log_joint - log_q
        elbo = f.detach().mean(0)
        if self.decoder == "variance":
            variance = f.var(0)
            return Estimate(loss=self.scale * variance.mean(), elbo=elbo, metrics={"variance": variance.detach().mean()})
        variance = (log_joint.detach() - log_q).var(0)
        terms = {"encoder": self.scale * variance.mean(), "decoder": -log_joint.mean()}
        return Estimate(loss=sum(terms.values()), elbo=elbo, metrics={"variance": variance.detach().mean()}, terms=terms)
