"""Run a named grid and report on it.

    python sweep.py NAME [OVERRIDES...]     run conf/sweep/NAME.yaml through `train.py -m`, then report
    python sweep.py report SWEEP_DIR        results.csv, summary.md and plots for any sweep's directory

Runs go to SWEEP_DIR/<their overrides> (default SWEEP_DIR: sweeps/NAME), so running a sweep again skips
the runs already done and redoes failed or missing ones. Overrides go to train.py: `S=4,16` replaces the
grid's S, `hydra/launcher=joblib` runs jobs in parallel, `hydra/launcher=slurm` submits them to SLURM.
"""

import argparse
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from vaelab.errors import ConfigError, require
from vaelab.reporting.report import write_report
from vaelab.resolvers import SWEEP_GROUP

ROOT = Path(__file__).resolve().parent
SWEEPS = ROOT / "conf" / "sweep"


def run(name, overrides, sweep_dir):
    """Launch the grid as one Hydra multirun in which each run's directory is named by its overrides; its W&B
    group is NAME-DATE-TIME, to the microsecond (a group of its own for each invocation) unless $VAELAB_SWEEP_GROUP or
    logger.wandb.group names one."""
    known = sorted(p.stem for p in SWEEPS.glob("*.yaml"))
    require(name in known, "sweep", name, f"a file in conf/sweep/: {', '.join(known)}")
    command = [sys.executable, str(ROOT / "train.py"), "--multirun", f"+sweep={name}", "skip_finished=true",
               f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=${hydra:job.override_dirname}", *overrides]
    print("vaelab:", " ".join(command), file=sys.stderr)
    group = os.environ.get(SWEEP_GROUP) or f"{name}-{datetime.now():%Y-%m-%d-%H%M%S-%f}"
    return subprocess.run(command, env={**os.environ, SWEEP_GROUP: group}).returncode


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
    if code == 0:
        unfinished = ~report(sweep_dir).status.isin(["done", "skipped"])
        code = int(unfinished.any())    # 1: some runs failed; running the sweep again redoes them
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as e:
        print(f"vaelab: {e}", file=sys.stderr)
        sys.exit(2)
