"""Run a named grid and report on it.

    python sweep.py NAME [OVERRIDES...]     run conf/sweep/NAME.yaml through `train.py -m`, then report
    python sweep.py report SWEEP_DIR        results.csv, summary.md and plots for any sweep's directory

Runs go to SWEEP_DIR/<their overrides> (default SWEEP_DIR: sweeps/NAME; a long list of overrides is cut short
and ends in a hash of the whole), so running a sweep again skips the runs already done, continues interrupted or
dead ones from their last checkpoint and redoes failed or missing ones. Overrides go to train.py: `S=4,16`
replaces the grid's S, `hydra/launcher=joblib` runs jobs in parallel, `hydra/launcher=slurm` submits them to SLURM.
Keys that do not name runs (logger, data_dir, ...) take one value: sweeping them would put two jobs in one folder.
"""

import argparse
import subprocess
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from vaelab.errors import ConfigError, require
from vaelab.reporting.report import write_report

ROOT = Path(__file__).resolve().parent
SWEEPS = ROOT / "conf" / "sweep"


def check_unnamed_keys(overrides):
    """Refuse a sweep over a key left out of run folder names: its jobs would share one folder."""
    unnamed = OmegaConf.load(ROOT / "conf" / "train.yaml").hydra.job.config.override_dirname.exclude_keys
    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if "=" in o])
    except OverrideParseException:
        return  # Hydra reports bad syntax itself
    for o in parsed:
        require(not (o.key_or_group in unnamed and o.is_sweep_override()), o.key_or_group, o.input_line.partition("=")[2],
                f"one value: {o.key_or_group} is not part of a run's folder name ({', '.join(unnamed)} are not), "
                "so its values would share one folder; run one sweep per value, each with its own --dir")


def run(name, overrides, sweep_dir):
    """Launch the grid as one Hydra multirun in which each run's directory is named by its overrides."""
    known = sorted(p.stem for p in SWEEPS.glob("*.yaml"))
    require(name in known, "sweep", name, f"a file in conf/sweep/: {', '.join(known)}")
    check_unnamed_keys(overrides)
    command = [sys.executable, str(ROOT / "train.py"), "--multirun", f"+sweep={name}", "skip_finished=true",
               f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir='${short_name:${hydra:job.override_dirname}}'",
               *overrides]
    print("vaelab:", " ".join(command), file=sys.stderr)
    return subprocess.run(command).returncode


def report(sweep_dir):
    runs = write_report(sweep_dir)
    counts = ", ".join(f"{n} {state}" for state, n in runs.status.value_counts().items())
    print(f"vaelab: {sweep_dir}: {counts}; wrote results.csv, summary.md, *.png",
          file=sys.stderr)
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a sweep in conf/sweep/, or `report`")
    parser.add_argument("args", nargs="*", help="train.py overrides; for `report`, the sweep's directory")
    parser.add_argument("--dir", type=Path, help="the sweep's directory (default sweeps/NAME)")
    options = parser.parse_intermixed_args(argv)
    if options.name == "report":
        require(len(options.args) == 1, "report", " ".join(options.args), "one sweep directory")
        report(Path(options.args[0]))
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
