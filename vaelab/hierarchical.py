"""Hierarchical latents: L stochastic layers z = (z1, ..., zL), z1 nearest the data,

    q(z|x) = q(z1|x) q(z2|z1) ... q(zL|z_{L-1}),    p(z) = p(zL) p(z_{L-1}|zL) ... p(z1|z2),    p(x|z) = p(x|z1),

as in the two-layer binary VAEs of the discrete-estimator benchmarks (Tucker et al. 2017; Yin & Zhou 2019;
Richter et al. 2020; Dong et al. 2020). A latent like those in `vaelab.latents`: the encoder gives q(z1|x)'s
parameters, the decoder reads z1, and z travels as one flat vector [..., z1 | z2 | ... | zL], so that
f = log p(x|z1) + log p(z) - log q(z|x) comes out of `VAE.log_weight` unchanged for any L.
"""

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.distributions import Distribution, TransformedDistribution
from torch.distributions.transforms import CatTransform

from vaelab.errors import require
from vaelab.latents import Binary, Categorical, Gaussian
from vaelab.nets import mlp

LAYER_KINDS = ("binary", "discrete", "continuous")


class Chain(Distribution):
    """A distribution over the flat z = [..., z1 | ... | zL] of `latent` (a Hierarchical), built layer by layer:
    the distribution `first` of the layer drawn first, then each next layer's given the one drawn before it,
    `conditionals[k](z_previous)`. Draws go layer by layer; log_prob sums the layers' log-probabilities,
    log r(z_first) + sum_k log r(z_next | z_previous). `order` lists the layers' indices in drawing order
    (the posterior 1, ..., L; the prior L, ..., 1). The layers' own distributions check their arguments.
    """

    arg_constraints = {}

    def __init__(self, first, conditionals, order, latent):
        self.first, self.conditionals, self.order, self.latent = first, conditionals, order, latent
        super().__init__(first.batch_shape, torch.Size([latent.event_size]), validate_args=False)

    @property
    def has_rsample(self):
        return self.latent.kind == "continuous"

    def layers(self, z):
        """The distribution of each layer given the layer drawn before it in z, in drawing order."""
        return self.conditioned(self.latent.split(z))

    def conditioned(self, parts):
        return [self.first, *(c(parts[k]) for c, k in zip(self.conditionals, self.order))]

    def draw(self, sample_shape, method):
        parts = [getattr(self.first, method)(sample_shape)]
        for conditional in self.conditionals:
            parts.append(getattr(conditional(parts[-1]), method)())
        return self.latent.join(dict(zip(self.order, parts)))

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.draw(sample_shape, "sample")

    def rsample(self, sample_shape=torch.Size()):
        return self.draw(sample_shape, "rsample")

    def log_prob(self, z):
        parts = self.latent.split(z)
        return sum(layer.log_prob(parts[k]) for layer, k in zip(self.conditioned(parts), self.order))


class Hierarchical(nn.Module):
    """L stochastic layers of widths `widths` (z1 first) and kinds `kinds` (binary, discrete with `classes`
    classes per variable, or continuous), joined by conditional networks with the deterministic hidden layers
    `hidden` ([] : linear conditionals) and `activation` between them; the top prior p(zL) is uniform (binary,
    discrete) or N(0, I) (continuous), learned with `learn_prior` for the discrete kinds.

    - `kinds`: each layer's kind; `kind`: the layers' kind if all share one, else "mixed" (an estimator trains a mix
      when it supports every layer's kind: `vaelab.build.check_estimator`);
    - `depth` = L; with L = 1 the latent is its one layer's (`Gaussian`, `Categorical` or `Binary`): the same
      distributions, relaxation and support, so that everything which takes that latent takes it;
    - `param_size` = the first layer's (the encoder's output); `size` = z1's (the decoder's input);
      `event_size` = the length of z;
    - `inference[k]`, `generative[k]`: the networks of q(z_{k+2}|z_{k+1}) and p(z_{k+1}|z_{k+2}).
    """

    def __init__(self, widths: Sequence[int] = (200, 200), kinds: Sequence[str] = ("binary", "binary"),
                 hidden: Sequence[int] = (), activation: Callable[[], nn.Module] = nn.Tanh, classes: int = 10,
                 learn_prior: bool = False):
        super().__init__()
        widths, kinds, hidden = list(widths), list(kinds), list(hidden)
        require(len(widths) >= 1 and all(type(w) is int and w >= 1 for w in widths), "latent.widths", widths,
                "a list of positive integer widths, one per stochastic layer")
        require(len(kinds) == len(widths) and all(k in LAYER_KINDS for k in kinds), "latent.kinds", kinds,
                f"one of {', '.join(LAYER_KINDS)} per layer ({len(widths)} layers, from latent.widths)")
        require(all(type(h) is int and h >= 1 for h in hidden), "latent.hidden", hidden,
                "a list of positive integer sizes ([] for linear conditionals)")
        require(type(classes) is int and classes >= 2, "latent.classes", classes, "at least 2 classes per variable")
        require(not learn_prior or kinds[-1] != "continuous", "latent.learn_prior", learn_prior,
                "false when the top layer is continuous (its prior is N(0, I))")
        self.depth, self.kinds = len(widths), tuple(kinds)
        self.kind = kinds[0] if len(set(kinds)) == 1 else "mixed"
        build = {"binary": lambda D, learn: Binary(D, learn_prior=learn),
                 "discrete": lambda D, learn: Categorical(D, classes, learn_prior=learn),
                 "continuous": lambda D, learn: Gaussian(D)}
        self.layers = nn.ModuleList(build[k](D, learn_prior and i == self.depth - 1)
                                    for i, (D, k) in enumerate(zip(widths, kinds)))
        pairs = list(zip(self.layers, self.layers[1:]))
        self.inference = nn.ModuleList(mlp(low.size, high.param_size, hidden, activation) for low, high in pairs)
        self.generative = nn.ModuleList(mlp(high.size, low.param_size, hidden, activation) for low, high in pairs)
        self.shapes = [layer.prior().event_shape for layer in self.layers]
        self.sizes = [layer.size for layer in self.layers]
        self.param_size, self.size, self.event_size = self.layers[0].param_size, self.sizes[0], sum(self.sizes)

    def split(self, z):
        """Each layer's part of z [..., event_size], in its own event shape."""
        return [part.unflatten(-1, shape) for part, shape in zip(z.split(self.sizes, -1), self.shapes)]

    def join(self, parts):
        """z [..., event_size] from each layer's part, given as {layer index: part}."""
        return torch.cat([self.layers[k].flatten(parts[k]) for k in range(self.depth)], -1)

    @staticmethod
    def conditional(net, source, target):
        """z_source -> the distribution of layer `target` with parameters net(z_source)."""
        return lambda z: target.posterior(net(source.flatten(z)))

    @property
    def alone(self) -> nn.Module | None:
        """The one layer of a one-layer latent, whose own methods serve; None for several layers."""
        return self.layers[0] if self.depth == 1 else None

    def posterior(self, params):
        """q(z1|x) q(z2|z1) ... from q(z1|x)'s parameters [B, param_size]; batch shape [B]."""
        if self.alone is not None:
            return self.alone.posterior(params)
        conditionals = [self.conditional(net, low, high)
                        for net, low, high in zip(self.inference, self.layers, self.layers[1:])]
        return Chain(self.layers[0].posterior(params), conditionals, list(range(self.depth)), self)

    def prior(self):
        """p(zL) p(z_{L-1}|zL) ... p(z1|z2); batch shape []."""
        if self.alone is not None:
            return self.alone.prior()
        conditionals = [self.conditional(net, high, low)
                        for net, low, high in zip(self.generative, self.layers, self.layers[1:])][::-1]
        return Chain(self.layers[-1].prior(), conditionals, list(range(self.depth))[::-1], self)

    def tempered(self, dist, temperature):
        """The chain `dist` (a posterior or prior of this latent) with every layer's conditional tempered by its
        own latent's `tempered`, drawn layer by layer as before."""
        if self.alone is not None:
            return self.alone.tempered(dist, temperature)
        order = dist.order
        targets = [self.layers[k] for k in order[1:]]
        conditionals = [lambda z, c=c, layer=layer: layer.tempered(c(z), temperature)
                        for c, layer in zip(dist.conditionals, targets)]
        return Chain(self.layers[order[0]].tempered(dist.first, temperature), conditionals, order, self)

    def relaxed(self, dist, temperature):
        """The chain `dist` relaxed layer by layer (Maddison et al. 2017, the Concrete of each layer given the relaxed
        layer drawn before it): a chain over the layers' log-space values y, mapped to z layer by layer by each
        layer's `relaxation`. Every layer must be discrete or binary."""
        if self.alone is not None:
            return self.alone.relaxed(dist, temperature)
        order = dist.order
        drawn = [self.layers[k] for k in order]
        conditionals = [lambda y, c=c, source=source, target=target:
                        target.relaxed(c(source.relaxation(y)), temperature).base_dist
                        for c, source, target in zip(dist.conditionals, drawn, drawn[1:])]
        chain = Chain(drawn[0].relaxed(dist.first, temperature).base_dist, conditionals, order, self)
        return TransformedDistribution(chain, [CatTransform([layer.relaxation for layer in self.layers], -1, self.sizes)])

    def hard(self, z):
        """Each layer's relaxed part rounded to its support value."""
        if self.alone is not None:
            return self.alone.hard(z)
        return self.join({k: layer.hard(part) for k, (layer, part) in enumerate(zip(self.layers, self.split(z)))})

    def flatten(self, z):
        """z1, the decoder's input."""
        if self.alone is not None:
            return self.alone.flatten(z)
        return z[..., : self.size]

    def support(self):
        """Every value of z (all layers discrete or binary), shape [prod_k N_k, event_size]."""
        if self.alone is not None:
            return self.alone.support()
        values = [layer.support().flatten(1) for layer in self.layers]
        return torch.stack([torch.cat(combination) for combination in itertools.product(*values)])
