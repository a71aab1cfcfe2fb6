"""What the objectives that learn their control variates share (REBAR, RELAX, Double-CV, RODEO).

Each builds the encoder-gradient estimate g_k = d ELBO / d l_k, l_k the logits of stochastic layer k (the encoder's
output for the first; for a layer drawn given the one before it, the inference network's output at each draw), as a
differentiable function of its own parameters psi (eta, temperature, networks, scales). The encoder and the
inference networks get g (detached) through l, the decoder, the generative networks and a learned prior
grad log p(x, b) at the hard draws b ~ q, so the model's gradient is the estimator's alone. `Estimate.surrogate` is
sum_psi psi * d/dpsi E||g||^2, detached factor: its gradient is the gradient of the variance (the mean of g does
not depend on psi, so minimising E||g||^2 minimises Var g) and it reaches psi only. The variance minimised is that
of the gradient with respect to every layer's logits, summed over coordinates and averaged over the batch, where
Grathwohl et al. (2018) take the encoder weights': the two share their mean, and the logits' costs one double
backward per step, not one per weight tensor.

Off the support ({0,1}^D, one-hot vectors) f(z) = log p(x|z1) + log p(z) - log q(z|x) is continued by the
log-probabilities' formulas, linear in each layer's z: b . l - softplus(l) (binary), z . log softmax(l)
(categorical), with each layer's logits read from the layer it is conditioned on, relaxed or not.
"""

import torch
import torch.nn.functional as F

from vaelab.hierarchical import Chain
from vaelab.objectives.base import Estimate, Objective


def linear_log_prob(logits, z, kind):
    """log Bernoulli(z; sigmoid(logits)) or log Cat(z; softmax(logits)) by the formula linear in z: exact at
    a hard z, defined at a relaxed one. Shape z's batch shape."""
    if kind == "binary":
        return (z * logits - F.softplus(logits)).sum(-1)
    return (z * logits.log_softmax(-1)).sum((-2, -1))


def layer_kinds(latent):
    """Each stochastic layer's kind, z1 first."""
    return getattr(latent, "kinds", (latent.kind,))


def layered(dist, parts):
    """(layer index, distribution of that layer given the layer drawn before it in `parts`) for each layer of a
    posterior or prior; a one-layer latent's distribution is its one layer's."""
    return zip(dist.order, dist.conditioned(parts)) if isinstance(dist, Chain) else [(0, dist)]


def log_weights(vae, x, parts, logits):
    """log p(x, z) and log q(z|x) at z given layer by layer (`parts`, z1 first, each hard or relaxed), each [n, B];
    q's logits given per layer, p's read from `parts` by the prior's chain."""
    kinds, latent = layer_kinds(vae.latent), vae.latent
    z = latent.join(dict(enumerate(parts))) if latent.depth > 1 else parts[0]
    log_prior = sum(linear_log_prob(p.base_dist.logits, parts[k], kinds[k]) for k, p in layered(vae.prior(), parts))
    log_q = sum(linear_log_prob(logits[k], part, kinds[k]) for k, part in enumerate(parts))
    return vae.log_likelihood(x, z) + log_prior, log_q


def score(b, logits, kind):
    """d log q(b|x) / d logits at a hard b: b - sigmoid(l) (binary), b - softmax(l) (categorical)."""
    return b - (torch.sigmoid(logits) if kind == "binary" else logits.softmax(-1))


def per_coordinate(signal, like):
    """A per-draw signal [S, B] broadcast against a per-coordinate tensor like [S, B, ...]."""
    return signal.reshape(*signal.shape, *[1] * (like.dim() - signal.dim()))


def others_mean(t):
    """For each draw s, the mean over the other draws j != s (first axis), (sum_j t_j - t_s) / (S - 1)."""
    return (t.sum(0) - t) / (len(t) - 1)


def bernoulli_draws(logits, S):
    """S draws b ~ Bernoulli(sigmoid(logits)), detached, [S, B, D]."""
    u = torch.rand((S, *logits.shape), dtype=logits.dtype, device=logits.device)
    return (u < torch.sigmoid(logits.detach())).to(logits.dtype)


def with_slopes(vae, x, b, logits):
    """f(b) (detached) and log p(x, b) at hard draws b, and the slope df/db there of f's linear continuation
    (detached): the Taylor coefficients of Double-CV and RODEO."""
    z = b.detach().requires_grad_()
    log_joint, log_q = log_weights(vae, x, [z], [logits.detach()])
    f = log_joint - log_q
    (slope,) = torch.autograd.grad(f.sum(), z, retain_graph=True)
    return f.detach(), log_joint, slope


class LearnedControlVariate(Objective):
    """Base class: subclasses implement `layer_gradients(vae, x, S) -> (logits, g, f [S, B], log_joint [S, B])`, the
    logits l_k of each layer in the model's graph and g_k in their shape, differentiable in the objective's
    parameters; or, for one layer, `logit_gradient(vae, x, S, logits) -> (g [B, ...], f, log_joint)` at the
    encoder's logits."""

    hierarchical = False  # unless a subclass builds the per-layer form
    score_function = True

    def logit_gradient(self, vae, x, S, logits):
        raise NotImplementedError

    def layer_gradients(self, vae, x, S):
        logits = vae.posterior(x).base_dist.logits
        g, f, log_joint = self.logit_gradient(vae, x, S, logits.detach().requires_grad_())
        return [logits], [g], f, log_joint

    def forward(self, vae, x, S):
        with torch.enable_grad():
            logits, g, f, log_joint = self.layer_gradients(vae, x, S)
            variance = sum(gk.pow(2).sum() for gk in g) / len(x)
            surrogate = self.variance_surrogate(variance)
        encoder = -sum((gk.detach() * lk).sum() for gk, lk in zip(g, logits)) / len(x)
        terms = {"encoder": encoder, "decoder": -log_joint.mean()}
        return Estimate(loss=sum(terms.values()), elbo=f.mean(0), terms=terms, surrogate=surrogate,
                        metrics={"logit_grad_sq": variance.detach()})

    def variance_surrogate(self, variance):
        """sum_psi psi * (d variance / d psi), the derivative detached: d surrogate / d psi = d variance / d psi,
        and nothing else is in its graph."""
        own = [p for p in self.parameters() if p.requires_grad]
        grads = torch.autograd.grad(variance, own, retain_graph=True, allow_unused=True)
        return torch.stack([(p * d.detach()).sum() for p, d in zip(own, grads) if d is not None]).sum()
