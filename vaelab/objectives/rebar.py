"""REBAR (Tucker et al. 2017): a relaxed control variate through the Concrete relaxation, eta and the
temperature learned; per layer for several stochastic layers."""

import math

import torch
from torch import nn

from vaelab.errors import require
from vaelab.hierarchical import Chain
from vaelab.latents import one_hot_argmax
from vaelab.objectives.learned import LearnedControlVariate, layer_kinds, log_weights, per_coordinate, score


def uniforms(logits, S):
    """Two sets of S uniforms (u, v) for a layer whose logits are [n, B, ...] (n = 1 or S), clamped into (0, 1)."""
    eps = torch.finfo(logits.dtype).eps
    return torch.rand((2, S, *logits.shape[1:]), dtype=logits.dtype, device=logits.device).clamp(eps, 1 - eps)


def perturbed(logits, u, kind):
    """z = l + noise from uniforms u, so that b = H(z) ~ q: logistic noise logit(u) with H = 1[z > 0] (binary),
    Gumbel noise -log(-log u) on log softmax(l) with H = one-hot argmax (categorical); reparameterised in l."""
    if kind == "binary":
        return logits + torch.logit(u)
    return logits.log_softmax(-1) - torch.log(-torch.log(u))


def hard(z, kind):
    """b = H(z), detached."""
    return (z.detach() > 0).to(z.dtype) if kind == "binary" else one_hot_argmax(z.detach())


def conditional(logits, b, v, kind):
    """z~ ~ p(z | H(z) = b) from uniforms v, reparameterised in l given b."""
    if kind == "binary":
        eps = torch.finfo(logits.dtype).eps
        theta = torch.sigmoid(logits)
        v = torch.where(b > 0, 1 - theta + v * theta, v * (1 - theta)).clamp(eps, 1 - eps)
        return logits + torch.logit(v)
    log_p = logits.log_softmax(-1)
    log_e = torch.log(-v.log())                                         # log E, E ~ Exp(1)
    top = -log_e                                                        # the max: a Gumbel of total mass 1
    rest = -torch.logaddexp(log_e - log_p, (b * log_e).sum(-1, keepdim=True))  # -log(E_k / p_k + E_top) < top
    return torch.where(b > 0, top, rest)


class REBAR(LearnedControlVariate):
    """For each stochastic layer k (z1 first, q(z_k | b_{k-1}) with logits l_k),

        g_k = [f(b) - c_k(z~_k)] d log q(b_k | b_{k-1}) / dl_k + dc_k(z_k)/dl_k - dc_k(z~_k)/dl_k,

    averaged over S draws: z_k = l_k + noise, b_k = H(z_k) ~ q (binary: logistic noise, H = 1[z > 0]; categorical:
    Gumbel noise, H = one-hot argmax), z~_k ~ p(z_k | b_k) reparameterised given b_k, and
    c_k(z_k) = eta f(b_1, ..., b_{k-1}, s(z_k), s(z'_{k+1}), ...), the layers before k hard, layer k relaxed by
    s(z) = sigmoid(z / lambda) (binary) or softmax(z / lambda) (categorical), and each layer after it relaxed from
    the same noise as its hard draw, z'_j = l_j(s(z'_{j-1})) + noise_j. Unbiased for the ELBO gradient whatever eta and
    lambda: given the noise of the other layers, c_k is a function of z_k alone, so
    E[c_k(z~_k) dlog q(b_k)] + E[dc_k(z~_k)] = E[dc_k(z_k)] by reparameterising z_k given b_k. One eta and one
    lambda serve every layer; both are learned by the variance surrogate (vaelab.objectives.learned). Tucker et al.,
    "REBAR: Low-variance, unbiased gradient estimates for discrete latent variable models", NeurIPS 2017, whose
    two-layer sigmoid belief networks take one such estimator a layer; the relaxed layers after k as in the per-layer
    code of Grathwohl et al. (2018), which learns one eta and one lambda a layer.

    `eta`, `temperature`: their initial values; `lr`: their learning rate.
    """

    latents = ("discrete", "binary")
    hierarchical = True

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
        """c at the relaxed draws, [n, B]; `relaxed`: z flat, [n, B, event_size]."""
        return self.eta * f_relaxed

    def layer_gradients(self, vae, x, S):
        kinds, q = layer_kinds(vae.latent), vae.posterior(x)
        first, following = (q.first, q.conditionals) if isinstance(q, Chain) else (q, [])
        logits = [first.base_dist.logits.unsqueeze(0)]                   # [1, B, ...], then [S, B, ...] a layer
        leaves, noise, z, b = [], [], [], []
        for k, kind in enumerate(kinds):
            if k:
                logits.append(following[k - 1](b[-1]).base_dist.logits)
            leaves.append(logits[-1].detach().requires_grad_())
            noise.append(uniforms(leaves[-1], S))
            z.append(perturbed(leaves[-1], noise[-1][0], kind))
            b.append(hard(z[-1], kind))
        passes = [(b, [leaf.expand_as(draw) for leaf, draw in zip(leaves, b)])]
        for k, kind in enumerate(kinds):
            for z_k in (z[k], conditional(leaves[k], b[k], noise[k][1], kind)):
                passes.append(self.relaxed_pass(following, kinds, b[:k], leaves[:k], z_k, leaves[k], noise[k + 1:]))
        parts = [torch.cat(layer) for layer in zip(*(p for p, _ in passes))]
        log_joint, log_q = log_weights(vae, x, parts, [torch.cat(layer) for layer in zip(*(lq for _, lq in passes))])
        f_all = (log_joint - log_q).split(S)
        relaxed = torch.cat([part.flatten(2) for part in parts], -1).split(S)
        f = f_all[0].detach()
        g = []
        for k, kind in enumerate(kinds):
            c_z, c_tilde = (self.control(x, relaxed[i], f_all[i]) for i in (1 + 2 * k, 2 + 2 * k))
            (pathwise,) = torch.autograd.grad((c_z - c_tilde).sum() / S, leaves[k], create_graph=True)
            signal = per_coordinate(f - c_tilde, b[k]) * score(b[k], leaves[k], kind)
            g.append(signal.sum_to_size(leaves[k].shape) / S + pathwise)
        return logits, g, f, log_joint[:S]

    def relaxed_pass(self, following, kinds, before, before_logits, z_k, logits_k, noise_after):
        """Each layer's value and q-logits with the layers before k hard, layer k relaxed from z_k, and each layer after
        it relaxed from its own noise given the relaxed layer before it: two lists, z1 first, each [S, B, ...]."""
        k = len(before)
        values = [*before, self.relax(z_k, kinds[k])]
        logits = [*(leaf.expand_as(draw) for leaf, draw in zip(before_logits, before)), logits_k.expand_as(z_k)]
        for j, (u, _) in enumerate(noise_after, k + 1):
            logits.append(following[j - 1](values[-1]).base_dist.logits)
            values.append(self.relax(perturbed(logits[-1], u, kinds[j]), kinds[j]))
        return values, logits
