"""Panels of the results page beside the benchmark: sweeps that compare something besides the estimator, such as
the variance loss's reference distribution r (`python sweep.py references`) or two stochastic layers
(`python sweep.py hierarchy`). Each panel is a table per latent with a row per estimator and compared key, how the
runs were made, and what the sweep's template (vaelab/conf/sweep/NAME.md, vaelab.reporting.templates) says they show.

    python sweep.py report sweeps/benchmark --markdown docs/results.md --panel sweeps/references
"""

from pathlib import Path

from vaelab.reporting.provenance import provenance, sweep_name, unfinished
from vaelab.reporting.report import ESTIMATOR, compared_keys, read_sweep
from vaelab.reporting.tables import LATENTS, latent_table, main_S
from vaelab.reporting.templates import sweep_text


def latents_in(done):
    """The latent configs of the runs, the benchmark's kinds first in their order, then any other (binary2_linear)."""
    return sorted(set(done.latent), key=lambda name: (LATENTS.index(name) if name in LATENTS else len(LATENTS), name))


def heading(title, sweep_dir, name):
    """A panel's title, with its folder where that is not its sweep's name: two panels of one sweep (sweeps/dong2020
    and sweeps/dong2020_vargrad, say) each keep a heading of their own on the page."""
    return title if Path(sweep_dir).name == name else f"{title} ({Path(sweep_dir).name})"


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
    latents = latents_in(done)
    title, study = sweep_text(name, sweep_dir, done, latents=latents, S=S, keys=keys)
    lines = [f"## {heading(title or name, sweep_dir, name)}", "", "From the runs of", "", *provenance(sweep_dir, runs, done)]
    for latent in latents:
        lines += [f"### {latent} latent, S={S}", "", latent_table(done, latent, S, keys).to_markdown(index=False), ""]
    lines += [*study, ""] if study else []
    return lines + unfinished(runs, "Runs that did not finish:")
