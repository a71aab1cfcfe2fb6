"""REBAR (Tucker et al. 2017): a relaxed control variate through the Concrete relaxation, eta and the
temperature learned."""

import math

import torch
from torch import nn

from vaelab.errors import require
from vaelab.latents import one_hot_argmax
from vaelab.objectives.learned import LearnedControlVariate, log_weights, per_coordinate, score


def coupled_noise(logits, S, kind):
    """z = l + noise, so that b = H(z) ~ q (binary: logistic noise, H = 1[z > 0]; categorical: Gumbel noise,
    H = one-hot argmax), and z~ ~ p(z | b), both reparameterised in l (z~ given b). Returns z, b, z~."""
    eps = torch.finfo(logits.dtype).eps
    u, v = torch.rand((2, S, *logits.shape), dtype=logits.dtype, device=logits.device).clamp(eps, 1 - eps)
    if kind == "binary":
        theta = torch.sigmoid(logits)
        z = logits + torch.logit(u)
        b = (z > 0).to(z.dtype).detach()
        v = torch.where(b > 0, 1 - theta + v * theta, v * (1 - theta)).clamp(eps, 1 - eps)
        return z, b, logits + torch.logit(v)
    log_p = logits.log_softmax(-1)
    z = log_p - torch.log(-torch.log(u))
    b = one_hot_argmax(z.detach())
    log_e = torch.log(-v.log())                                         # log E, E ~ Exp(1)
    top = -log_e                                                        # the max: a Gumbel of total mass 1
    rest = -torch.logaddexp(log_e - log_p, (b * log_e).sum(-1, keepdim=True))  # -log(E_k / p_k + E_top) < top
    return z, b, torch.where(b > 0, top, rest)


class REBAR(LearnedControlVariate):
    """g = [f(b) - c(z~)] d log q(b) / dl + dc(z)/dl - dc(z~)/dl, c(z) = eta f(sigma_lambda(z)),
    averaged over S draws, with z, b, z~ from `coupled_noise` and sigma_lambda(z) = sigmoid(z / lambda)
    (binary) or softmax(z / lambda) (categorical); unbiased for the ELBO gradient whatever eta and lambda
    (E[c(z~) dlog q(b)] + E[dc(z~)] = E[dc(z)] by reparameterising z given b). eta and log lambda are learned
    by the variance surrogate (vaelab.objectives.learned). Tucker et al., "REBAR: Low-variance, unbiased
    gradient estimates for discrete latent variable models", NeurIPS 2017.

    `eta`, `temperature`: their initial values; `lr`: their learning rate.
    """

    latents = ("discrete", "binary")

    def __init__(self, eta: float = 1.0, temperature: float = 0.5, lr: float = 1e-4):
        super().__init__()
        require(temperature > 0, "loss.temperature", temperature, "a positive temperature")
        require(lr > 0, "loss.lr", lr, "a positive learning rate")
        self.eta = nn.Parameter(torch.tensor(float(eta)))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.lr = lr

    def relax(self, z, kind):
        scaled = z / self.log_temperature.exp()
        return torch.sigmoid(scaled) if kind == "binary" else scaled.softmax(-1)

    def control(self, x, relaxed, f_relaxed):
        """c at the relaxed draws, [S, B]."""
        return self.eta * f_relaxed

    def logit_gradient(self, vae, x, S, logits):
        kind = vae.latent.kind
        z, b, z_tilde = coupled_noise(logits, S, kind)
        relaxed = self.relax(torch.cat([z, z_tilde]), kind)
        log_joint, log_q = log_weights(vae, x, torch.cat([b, relaxed]), logits)
        f_all = log_joint - log_q
        f = f_all[:S].detach()
        c_z, c_tilde = self.control(x, relaxed, f_all[S:]).chunk(2)
        (pathwise,) = torch.autograd.grad((c_z - c_tilde).sum() / S, logits, create_graph=True)
        g = (per_coordinate(f - c_tilde, b) * score(b, logits, kind)).mean(0) + pathwise
        return g, f, log_joint[:S]
