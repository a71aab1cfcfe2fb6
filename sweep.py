"""Run a named grid and report on it.

    python sweep.py NAME [OVERRIDES...]     run vaelab/conf/sweep/NAME.yaml through `train.py -m`, then report
    python sweep.py report SWEEP_DIR        results.csv, summary.md and plots for any sweep's directory
    python sweep.py report SWEEP_DIR --markdown docs/results.md     and the results page (vaelab.reporting.page)
    python sweep.py report SWEEP_DIR --markdown docs/results.md --readme README.md   and the README's headline table
    python sweep.py report SWEEP_DIR --into docs/results.md     the sweep as a panel of that page, the rest kept

A sweep file's `grid` names latents and S; the runs are every loss config whose objective accepts each pair
(benchmark: every estimator per latent kind; estimators: one latent; fig5: four losses and their manifolds).
Runs go to SWEEP_DIR/<their overrides> (default SWEEP_DIR: sweeps/NAME; a long list of overrides is cut short
and ends in a hash of the whole), so running a sweep again skips the runs already done, continues interrupted or
dead ones from their last checkpoint and redoes failed or missing ones. Overrides go to train.py: `S=4,16`
replaces the grid's S, `hydra/launcher=joblib` runs jobs in parallel, `hydra/launcher=slurm` submits them to SLURM.
Keys that do not name runs (logger, data_dir, ...) take one value: sweeping them would put two jobs in one folder.
"""

import argparse
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from vaelab.errors import ConfigError, require
from vaelab.lifecycle import status_of
from vaelab.paths import CONF, SWEEPS
from vaelab.reporting.report import run_dirs, write_report
from vaelab.resolvers import SWEEP_GROUP

ROOT = Path(__file__).resolve().parent
GRID_KEYS = ("latent", "S", "loss")   # what a sweep file's `grid` spans, valid pairs only


def given_values(overrides):
    """(values of the grid keys given on the command line, the other overrides): `loss=iwae,vimco` -> ["iwae", "vimco"]."""
    given, rest = {}, []
    for text, override in zip(overrides, OverridesParser.create().parse_overrides(overrides)):
        if override.key_or_group not in GRID_KEYS:
            rest.append(text)
        elif override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            given[override.key_or_group] = override.value().filter(sorted(p.stem for p in (CONF / "loss").glob("*.yaml")))
        else:
            given[override.key_or_group] = list(override.sweep_iterator()) if override.is_sweep_override() \
                else [override.value()]
    return given, rest


def latent_support(name):
    """(kind, depth) of the latent config `name`: what an objective's `problems` judges (binary2_linear: binary, 2)."""
    from hydra.utils import instantiate

    latent = instantiate(OmegaConf.load(CONF / "latent" / f"{name}.yaml"))
    return latent.kind, latent.depth


def grid(spec, given, found):
    """The runs of a sweep as {(latent, S): [loss, ...]}: every loss config in `found` ({name: (objective, S)})
    whose objective trains that latent with S samples, for each latent and S of `spec` (a sweep file's `grid`;
    its `loss`, if any, narrows the losses), and its panel's losses at the panel's S. The command line's latent,
    S or loss replace the spec's (and the panel). Pairs the objectives refuse are left out, and listed on stderr
    when the command line or the spec named them."""
    latents, sizes = given.get("latent", spec.latent), given.get("S", spec.S)
    support = {kind: latent_support(kind) for kind in latents}

    def problems(name, kind, S):
        return found[name][0].problems(support[kind][0], S, support[kind][1])
    named = given.get("loss", spec.get("loss"))
    for name in named or ():
        require(name in found, "loss", name, f"a file in vaelab/conf/loss/: {', '.join(found)}")
    runs = {(kind, S): [n for n in named or found if not problems(n, kind, S)]
            for kind in latents for S in sizes}
    for (kind, S), losses in runs.items():
        for name in [n for n in named or () if n not in losses]:
            print(f"vaelab: left out loss={name} latent={kind} S={S}: {'; '.join(problems(name, kind, S))}",
                  file=sys.stderr)
    panel = spec.get("panel")
    if panel and not {"S", "loss"} & set(given):
        for kind in latents:
            for S in panel.S:
                valid = [n for n in panel.loss if not problems(n, kind, S)]
                runs[kind, S] = list(dict.fromkeys([*runs.get((kind, S), []), *valid]))
    return {key: losses for key, losses in runs.items() if losses}


def multiruns(runs):
    """The grid {(latent, S): [loss, ...]} as few Hydra multiruns as products allow, [(latents, sizes, losses)]:
    the S values that share a latent and its losses go together, then the latents that share those S and losses.
    Fewer multiruns start fewer worker pools, and leave fewer lone jobs at their ends."""
    by_latent = {}
    for (kind, S), losses in runs.items():
        by_latent.setdefault((kind, tuple(losses)), []).append(S)
    merged = {}
    for (kind, losses), sizes in by_latent.items():
        merged.setdefault((tuple(sizes), losses), []).append(kind)
    return [(kinds, list(sizes), list(losses)) for (sizes, losses), kinds in merged.items()]


def sweep_spec(name):
    known = sorted(p.stem for p in SWEEPS.glob("*.yaml"))
    require(name in known, "sweep", name, f"a file in vaelab/conf/sweep/: {', '.join(known)}")
    return OmegaConf.load(SWEEPS / f"{name}.yaml").grid


def check_unnamed_keys(overrides):
    """Refuse a sweep over a key left out of run folder names: its jobs would share one folder."""
    unnamed = OmegaConf.load(CONF / "train.yaml").hydra.job.config.override_dirname.exclude_keys
    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if "=" in o])
    except OverrideParseException:
        return  # Hydra reports bad syntax itself
    for o in parsed:
        require(not (o.key_or_group in unnamed and o.is_sweep_override()), o.key_or_group, o.input_line.partition("=")[2],
                f"one value: {o.key_or_group} is not part of a run's folder name ({', '.join(unnamed)} are not), "
                "so its values would share one folder; run one sweep per value, each with its own --dir")


def run(name, overrides, sweep_dir):
    """Launch the grid as one Hydra multirun per (latent, S), each run's directory named by its overrides, then
    draw the grid's figure if it names one; returns the worst exit status. The sweep's W&B group is
    NAME-DATE-TIME, to the microsecond (a group of its own for each invocation), unless $VAELAB_SWEEP_GROUP or
    logger.wandb.group names one."""
    from vaelab.build import estimators  # torch and Lightning load here, after the name is checked

    spec = sweep_spec(name)
    check_unnamed_keys(overrides)
    given, rest = given_values(overrides)
    runs = grid(spec, given, estimators())
    code, jobs = 0, [(loss, kind, S) for (kind, S), losses in runs.items() for loss in losses]
    group = os.environ.get(SWEEP_GROUP) or f"{name}-{datetime.now():%Y-%m-%d-%H%M%S-%f}"
    for kinds, sizes, losses in multiruns(runs):
        command = [sys.executable, str(ROOT / "train.py"), "--multirun", f"+sweep={name}", "skip_finished=true",
                   f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir='${short_name:${hydra:job.override_dirname}}'",
                   f"latent={','.join(kinds)}", f"S={','.join(map(str, sizes))}", f"loss={','.join(losses)}", *rest]
        print("vaelab:", " ".join(command), file=sys.stderr)
        code = max(code, subprocess.run(command, env={**os.environ, SWEEP_GROUP: group}).returncode)
    if code == 0 and spec.get("figure"):
        from vaelab.reporting.plots import manifolds

        print("vaelab: wrote", manifolds(finished_in_order(sweep_dir, jobs), Path(sweep_dir) / spec.figure),
              file=sys.stderr)
    return code


def finished_in_order(sweep_dir, jobs):
    """The sweep's finished run folders in the grid's order of (loss, latent, S), then by seed."""
    from vaelab.lifecycle import status_of
    from vaelab.reporting.report import config_keys, run_dirs

    order = {job: i for i, job in enumerate(jobs)}
    keys = {d: config_keys(d) for d in run_dirs(sweep_dir) if status_of(d) == "done"}
    return sorted(keys, key=lambda d: (order.get((keys[d]["loss"], keys[d]["latent"], keys[d]["S"]), len(order)),
                                       keys[d]["seed"]))


def writable(path) -> bool:
    """Whether `path` can be written: the file or folder itself where it exists, else the nearest folder above it
    (where the missing ones would be made)."""
    given = existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    return (existing == given or existing.is_dir()) and os.access(existing, os.W_OK)


def check_report(sweep_dir, markdown, readme, figures, panels):
    """Refuse, before anything is written, a report whose outputs cannot be written, whose extras are missing or
    given without a page, or whose page would plot gradient diagnostics its runs never logged."""
    from vaelab.reporting.report import read_sweep

    for panel in panels:
        require(markdown and run_dirs(panel), "--panel", str(panel),
                "with --markdown, a sweep's folder holding run folders (with .hydra/)")
    for figure in figures:
        require(markdown and figure.is_file(), "--figure", str(figure), "with --markdown, a PNG file")
    require(readme is None or markdown, "--readme", str(readme), "with --markdown, a README to rewrite")
    require(readme is None or readme.is_file(), "--readme", str(readme), "an existing README with results markers")
    outputs = [("report", sweep_dir), *(("--panel", p) for p in panels)]
    if markdown:
        outputs += [("--markdown", markdown), ("--markdown", markdown.with_suffix("")), ("--readme", readme)]
    for key, path in outputs:
        require(path is None or writable(path), key, str(path), "a path this user can write")
    if markdown:
        runs, _ = read_sweep(sweep_dir) if Path(sweep_dir).is_dir() else (None, None)
        require(runs is None or runs.empty or "grad/encoder/variance" in runs, "--markdown", str(markdown),
                f"a page of a sweep with gradient diagnostics; the runs under {sweep_dir} logged none "
                "(run it with callbacks=[default,diagnostics], as vaelab/conf/sweep/benchmark.yaml does)")


def check_section(sweep_dir, page, others):
    """Refuse, before anything is written, a panel written into a page that is missing or cannot be written, from a
    folder without runs, or given with the flags of a whole page (`others`: {flag: its value})."""
    for flag, value in others.items():
        require(not value, flag, str(value), "no other output with --into, which rewrites one section of a page")
    require(page.is_file() and writable(page) and writable(page.with_suffix("")), "--into", str(page),
            "an existing results page this user can write, and its figures' folder beside it "
            "(python sweep.py report SWEEP --markdown PAGE writes one)")
    require(writable(sweep_dir) and any(status_of(run) == "done" for run in run_dirs(sweep_dir)), "report",
            str(sweep_dir), "a sweep's folder, writable by this user, holding a finished run (status.json: done)")


def section(sweep_dir, page):
    """The sweep's report in its folder, and its panel written into the results page `page` (its section replaced in
    place, or added before the page's plots); the rest of the page is left as it was."""
    from vaelab.reporting.page import write_section

    write_report(sweep_dir)
    write_section(sweep_dir, page)
    print(f"vaelab: wrote the {Path(sweep_dir).name} panel into {page}", file=sys.stderr)


def report(sweep_dir, markdown=None, readme=None, figures=(), panels=()):
    """results.csv, summary.md and plots in the sweep's directory; with `markdown`, also the results page (and, with
    `readme`, that README's headline table between its results markers), showing `figures` (PNGs) after its own
    and the sweeps in `panels` after its tables."""
    runs = write_report(sweep_dir)
    counts = ", ".join(f"{n} {state}" for state, n in runs.status.value_counts().items())
    print(f"vaelab: {sweep_dir}: {counts}; wrote results.csv, summary.md, *.png",
          file=sys.stderr)
    if markdown:
        from vaelab.reporting.page import write_page

        for panel in panels:
            write_report(panel)
        write_page(sweep_dir, markdown, readme, figures, panels)
        print(f"vaelab: wrote {markdown} and {Path(markdown).with_suffix('')}/*.png", file=sys.stderr)
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a sweep in vaelab/conf/sweep/, or `report`")
    parser.add_argument("args", nargs="*", help="train.py overrides; for `report`, the sweep's directory")
    parser.add_argument("--dir", type=Path, help="the sweep's directory (default sweeps/NAME)")
    parser.add_argument("--markdown", type=Path, help="report: also write this results page (e.g. docs/results.md)")
    parser.add_argument("--readme", type=Path,
                        help="with --markdown: also rewrite this README's headline table (between its results markers)")
    parser.add_argument("--figure", type=Path, action="append", default=[],
                        help="with --markdown: a PNG to show on the page too, e.g. sweeps/fig5/stojanovic_fig5.png")
    parser.add_argument("--panel", type=Path, action="append", default=[],
                        help="with --markdown: another sweep's directory shown as a panel, e.g. sweeps/references")
    parser.add_argument("--into", type=Path,
                        help="report: write the sweep as a panel into this existing page, replacing its section there")
    options = parser.parse_intermixed_args(argv)
    require(options.name == "report" or not options.into, "--into", str(options.into), "with report only")
    if options.name == "report":
        require(len(options.args) == 1, "report", " ".join(options.args), "one sweep directory")
        sweep_dir = Path(options.args[0])
        if options.into:
            check_section(sweep_dir, options.into, {"--markdown": options.markdown, "--readme": options.readme,
                                                    "--figure": options.figure, "--panel": options.panel})
            section(sweep_dir, options.into)
        else:
            check_report(sweep_dir, options.markdown, options.readme, options.figure, options.panel)
            report(sweep_dir, options.markdown, options.readme, options.figure, options.panel)
        return 0
    sweep_dir = options.dir or Path("sweeps") / options.name
    code = run(options.name, options.args, sweep_dir)
    if code == 2 or not sweep_dir.is_dir():
        return code   # refused before any job started: train.py has said why
    unfinished = ~report(sweep_dir).status.isin(["done", "skipped"])
    return int(code != 0 or unfinished.any())    # 1: some runs failed or did not run; running the sweep again redoes them


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as e:
        print(f"vaelab: {e}", file=sys.stderr)
        sys.exit(2)
