"""The variance loss (the seed method) and VarGrad (Richter et al. 2020)."""

from vaelab.errors import require
from vaelab.objectives.base import Estimate, Objective

DECODER_SIGNALS = ("variance", "elbo")


class VarianceLoss(Objective):
    """L(x) = scale * Var_{z ~ q, detached}[f(z, x)], the 1/(S-1) sample variance over S draws.

    Var f = 0 exactly when q(z|x) is the true posterior; no reparameterisation is needed.
    `decoder="variance"` (the seed's Algorithm 1): phi and theta both get grad L, through f.
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
        q = vae.posterior(x)
        z = q.sample((S,))
        log_q = q.log_prob(z)
        log_joint = vae.log_likelihood(x, z) + vae.prior().log_prob(z)
        f = log_joint - log_q
        if self.decoder == "variance":
            variance = f.var(0)
            loss = self.scale * variance.mean()
        else:
            variance = (log_joint.detach() - log_q).var(0)
            loss = self.scale * variance.mean() - log_joint.mean(0).mean()
        return Estimate(loss=loss, elbo=f.detach().mean(0), metrics={"variance": variance.detach().mean()})
