"""Panels of the results page beside the benchmark: sweeps that compare something besides the estimator, such as
the variance loss's reference distribution r (`python sweep.py references`) or two stochastic layers
(`python sweep.py hierarchy`). Each panel is a table per latent with a row per estimator and compared key, how the
runs were made, and for the references the measured answer: does any r keep the variance loss from collapsing?

    python sweep.py report sweeps/benchmark --markdown docs/results.md --panel sweeps/references
"""

from pathlib import Path

import numpy as np

from vaelab.reporting.provenance import provenance, sweep_name, unfinished
from vaelab.reporting.report import ESTIMATOR, compared_keys, read_sweep, read_yaml
from vaelab.reporting.tables import LATENTS, latent_table, main_S

TITLES = {"references": "The variance loss's reference distribution r", "hierarchy": "Two stochastic layers"}
REFERENCE = "loss.reference"
ORDER = ("posterior", "prior", "mixture", "tempered")
COLLAPSED = 0.1   # KL(q‖p) under this fraction of VarGrad's with r = q: the posterior has collapsed onto the prior


def latents_in(done):
    """The latent configs of the runs, the benchmark's kinds first in their order, then any other (binary2_linear)."""
    return sorted(set(done.latent), key=lambda name: (LATENTS.index(name) if name in LATENTS else len(LATENTS), name))


def reference_names(sweep_dir, done):
    """Each reference's name with the setting it was run at, read from a run's config: mixture (mix 0.5), ..."""
    settings = {"mixture": "mix", "tempered": "temperature"}
    names = {}
    for reference, group in done.groupby(REFERENCE):
        key = settings.get(reference)
        value = read_yaml(Path(sweep_dir) / group.run.iloc[0] / "config.yaml")["loss"].get(key) if key else None
        names[reference] = f"{reference} ({key} {value:g})" if value is not None else reference
    return names


def ordered(rows):
    """(reference, its rows) in the order the references are defined (vaelab.references), any other after."""
    return sorted(rows.groupby(REFERENCE), key=lambda item: (ORDER.index(item[0]) if item[0] in ORDER else len(ORDER), item[0]))


def mean(rows, metric):
    return rows[metric].mean() if metric in rows and rows[metric].notna().any() else np.nan


def references_answer(sweep_dir, done, latent, S):
    """Sentences from the runs: KL(q‖p) and test ELBO of the variance loss under each r, against VarGrad's with
    r = q, and which r (if any) keeps the decoder-through-variance run from collapsing."""
    rows = done[(done.latent == latent) & (done.S == S)]
    variance, vargrad = rows[rows[ESTIMATOR] == "variance"], rows[rows[ESTIMATOR] == "vargrad"]
    baseline = vargrad[vargrad[REFERENCE] == "posterior"]
    kl_baseline, elbo_baseline = mean(baseline, "test/kl"), mean(baseline, "test/elbo")
    if variance.empty or np.isnan(kl_baseline):
        return []
    names = reference_names(sweep_dir, done)
    by_reference = {r: (mean(g, "test/kl"), mean(g, "test/elbo")) for r, g in ordered(variance)}
    kept = [names[r] for r, (kl, _) in by_reference.items() if kl >= COLLAPSED * kl_baseline]
    measured = "; ".join(f"{names[r]}: KL {kl:.2g}, test ELBO {elbo:.2f}" for r, (kl, elbo) in by_reference.items())
    verdict = (f"{', '.join(kept)} kept KL(q‖p) above {COLLAPSED:g} of VarGrad's" if kept else
               f"no reference kept KL(q‖p) above {COLLAPSED:g} of VarGrad's: the posterior collapses onto the prior "
               f"under every r tried")
    others = ordered(vargrad[vargrad[REFERENCE] != "posterior"])
    encoder_only = "; ".join(f"{names[r]} {mean(g, 'test/elbo'):.2f}" for r, g in others)
    lines = [f"- **{latent}**, the decoder trained through Var_r f (loss=variance): {measured} nats; against VarGrad "
             f"with r = q (decoder by the ELBO): KL {kl_baseline:.2f}, test ELBO {elbo_baseline:.2f}. So {verdict}."]
    if encoder_only:
        lines.append(f"- **{latent}**, VarGrad (decoder by the ELBO from draws of q) with the encoder's r changed: "
                     f"test ELBO {encoder_only}, against {elbo_baseline:.2f} with r = q.")
    return lines


def panel(sweep_dir):
    """The panel's markdown lines, read from the sweep's finished runs."""
    sweep_dir = Path(sweep_dir)
    runs, _ = read_sweep(sweep_dir)
    done = runs[runs.status == "done"]
    if done.empty:
        raise FileNotFoundError(f"no finished runs under {sweep_dir}")
    name = sweep_name(sweep_dir, done) or sweep_dir.name
    S = main_S(done)
    keys = [ESTIMATOR] + [k for k in compared_keys(runs) if k not in (ESTIMATOR, "S", "latent")]
    lines = [f"## {TITLES.get(name, name)}", "", "From the runs of", "", *provenance(sweep_dir, runs, done)]
    for latent in latents_in(done):
        lines += [f"### {latent} latent, S={S}", "", latent_table(done, latent, S, keys).to_markdown(index=False), ""]
    if REFERENCE in keys:
        lines += [f"### Does any reference keep the variance loss from collapsing? (S={S})", "",
                  "With q(z|x) = p(z) and a decoder that ignores z, f = log p(x) at every z, so Var_r f = 0 under any "
                  "r with the collapsed model's support: that model minimises the loss whatever r is, and r changes only "
                  "which draws the loss sees on the way. Measured (KL(q‖p) and test ELBO in nats, means over seeds):", ""]
        lines += [line for latent in latents_in(done) for line in references_answer(sweep_dir, done, latent, S)] + [""]
    return lines + unfinished(runs, "Runs that did not finish:")
