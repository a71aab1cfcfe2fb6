"""Posterior collapse: q(z|x) = p(z) for every x, so that the decoder models the data without z.

Shown by posterior health (vaelab.metrics.health): KL(q || p) per datum below KL_FLOOR nats; no active
units (continuous latents); or a mean entropy per variable within ENTROPY_SHARE of its maximum ln K (ln 2
for binary), which a uniform prior makes the same as KL = 0.
"""

import math

from vaelab.metrics.health import layer_latents

KL_FLOOR = 0.01
ENTROPY_SHARE = 0.99
DOCS = "docs/estimators.md#posterior-collapse"


def max_entropy(latent) -> float | None:
    """The largest mean entropy per discrete or binary variable, ln K for a K-class one and ln 2 for a bit,
    averaged over those variables of every layer as `health.mean_entropy` averages theirs; None if there are none."""
    layers = [layer for layer in layer_latents(latent) if layer.kind != "continuous"]
    if not layers:
        return None
    bounds = [(layer.D, math.log(layer.K if layer.kind == "discrete" else 2)) for layer in layers]
    return sum(d * bound for d, bound in bounds) / sum(d for d, _ in bounds)


def signs(metrics, latent, stage: str) -> str | None:
    """What shows collapse among `metrics` ({stage}/kl, {stage}/active_units, {stage}/entropy, as logged by
    VAEModule), e.g. "KL(q||p) 1.4e-06 nats per datum"; None when nothing does."""
    found = []
    kl = metrics.get(f"{stage}/kl")
    if kl is not None and float(kl) < KL_FLOOR:
        found.append(f"KL(q||p) {float(kl):.2g} nats per datum")
    units = metrics.get(f"{stage}/active_units")
    if units is not None and float(units) == 0:
        found.append("no active units")
    entropy, most = metrics.get(f"{stage}/entropy"), max_entropy(latent)
    if entropy is not None and most is not None and float(entropy) >= ENTROPY_SHARE * most:
        found.append(f"entropy {float(entropy):.4g} of at most {most:.4g} nats per variable")
    return ", ".join(found) or None


def likely_cause(objective) -> str:
    """Why the estimator in use is likely to have collapsed, and what to try, from what it declares
    (vaelab.objectives.base): what trains the decoder, and whether the encoder learns from a score function."""
    if objective.decoder_objective == "variance":
        return ("the variance loss trains the decoder through Var f, which is zero for a decoder that ignores z; "
                "try loss.decoder=elbo (VarGrad)")
    if objective.score_function:
        return ("the encoder learns from a score-function estimate, too noisy to move q off the prior before the "
                "decoder learns to do without z; try a larger S, or a smaller lr")
    return "the KL term pulls q onto the prior faster than the decoder learns to use z; try a longer run or a smaller lr"


def message(found: str, objective) -> str:
    """The line a run prints when it ends collapsed."""
    return f"posterior collapse ({found}): {likely_cause(objective)}. See {DOCS}"
