"""Where a results page's numbers come from: the sweep command that made the runs, the commit, when, on what
machine, and the training and evaluation budget every run shared, read back from the runs' own records."""

import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import OmegaConf

from vaelab.lifecycle import code_commit, read_status
from vaelab.paths import SWEEPS
from vaelab.reporting.report import ESTIMATOR, read_yaml


def recorded(dirs, key, unrecorded) -> str:
    """The values of `key` that the runs in `dirs` recorded in status.json's owner, in backticks; for runs that
    recorded none, `unrecorded`, the report's own value, said to be that."""
    found = sorted({str(((read_status(d) or {}).get("owner") or {}).get(key) or "") for d in dirs} - {""})
    if found:
        return ", ".join(f"`{value}`" for value in found)
    return f"`{unrecorded}` (the report's: the runs recorded none)"


def commits(dirs) -> str:
    """The vaelab commit(s) the runs in `dirs` trained with; the report's, said to be so, where they recorded none."""
    return recorded(dirs, "commit", code_commit() or "unknown")


def threads(dirs) -> str:
    """The OMP_NUM_THREADS the runs in `dirs` trained with; the report's, said to be so, where they recorded none."""
    return recorded(dirs, "threads", os.environ.get("OMP_NUM_THREADS", "torch's default"))


def cpu_model():
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.processor() or platform.machine()


def gpu_name():
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def shared_overrides(sweep_dir, done):
    """The command-line overrides every finished run of the sweep was given."""
    return set.intersection(*(set(read_yaml(Path(sweep_dir) / r / ".hydra" / "overrides.yaml")) for r in done.run))


def sweep_name(sweep_dir, done):
    """The vaelab/conf/sweep/ file the runs came from (sweep.py's +sweep=NAME), or None for a plain `train.py -m`."""
    return next((o.partition("=")[2] for o in shared_overrides(sweep_dir, done) if o.startswith("+sweep=")), None)


def chosen(sweep_dir, name, done) -> list:
    """What the sweep's command chose beyond its sweep file: `--dir` where the runs are not in sweeps/NAME, and `loss=`
    where they are some of the losses the file's grid lists."""
    folder = [] if Path(sweep_dir).name == name else [f"--dir {sweep_dir}"]
    path = SWEEPS / f"{name}.yaml"
    listed = sorted((OmegaConf.load(path).get("grid") or {}).get("loss") or []) if path.is_file() else []
    losses = sorted(set(done[ESTIMATOR]))
    return folder + ([f"{ESTIMATOR}={','.join(losses)}"] if listed and losses != listed else [])


def sweep_command(sweep_dir, done):
    """The sweep.py command that made the runs, read back from the first run's Hydra record: its sweep, folder,
    launcher, the losses where it chose some of its grid's (chosen), and every override that all runs share (the
    grid keys latent, S, loss and seed excepted)."""
    shared = shared_overrides(sweep_dir, done)
    name = sweep_name(sweep_dir, done) or "NAME"
    hydra = read_yaml(Path(sweep_dir) / done.run.iloc[0] / ".hydra" / "hydra.yaml")["hydra"]
    launcher = [o for o in hydra["overrides"]["hydra"] if o.startswith("hydra/launcher=")]
    internal = ("+sweep=", "skip_finished=", "latent=", "S=", "loss=", "seed=")
    extra = sorted(o for o in shared if not o.startswith(internal))
    return (" ".join(["python sweep.py", name, *chosen(sweep_dir, name, done), *launcher, *extra]),
            hydra.get("launcher", {}).get("n_jobs"))


def budget(sweep_dir, done):
    """The training and evaluation budget every run shared, from the first run's resolved config."""
    cfg = read_yaml(Path(sweep_dir) / done.run.iloc[0] / "config.yaml")
    trainer, data = cfg["trainer"], cfg["dataset"]
    batch = data.get("batch_size")
    tested = trainer.get("limit_test_batches")
    test_set = f"the first {tested} batches of {batch} test images (in the data set's order)" \
        if isinstance(tested, int) else "the whole test set"
    per_epoch, validated = trainer.get("limit_train_batches"), trainer.get("limit_val_batches")
    val_set = f"the first {validated} validation batches" if isinstance(validated, int) else "the whole validation set"
    net = cfg["net"]
    activation = net["activation"]["_target_"].rsplit(".", 1)[-1]
    nets = f"an MLP encoder with hidden sizes {net['hidden']} ({activation}), the decoder mirroring it" \
        if net["hidden"] else "a linear encoder and decoder"
    interval = trainer.get("val_check_interval") or 1
    if trainer.get("check_val_every_n_epoch") is None and isinstance(interval, int):   # a step budget (max_steps)
        training = f"{trainer['max_steps']} steps of batches of {batch}, validation every {interval} steps"
    else:
        training = f"{trainer['max_epochs']} epochs of {per_epoch or 'all'} batches of {batch}, validation every " \
            f"{interval} epoch"
    return (f"{training} on {val_set}; {nets}; "
            f"test ELBO (1 draw) and test NLL (k={cfg['nll_samples']} importance samples, draws seeded by batch) on "
            f"{test_set}")


def span(run_dir):
    """(start, end) of a run, in seconds since the epoch: when its process took it up (status.json's owner; Hydra's
    record of the job where none was written, which a later invocation rewrites), to status.json's last write."""
    started = ((read_status(run_dir) or {}).get("owner") or {}).get("started")
    start = datetime.fromisoformat(started).timestamp() if started else \
        run_dir.joinpath(".hydra", "hydra.yaml").stat().st_mtime
    return start, run_dir.joinpath("status.json").stat().st_mtime


def busy(spans):
    """Seconds covered by the union of (start, end) spans: a sweep's wall time, however many times it was started."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(spans):
        total += max(0.0, end - max(start, reached))
        reached = max(reached, end)
    return total


def provenance(sweep_dir, runs, done):
    """How the sweep's runs were made: its command, commit, start and wall time, machine, budget and data."""
    command, jobs = sweep_command(sweep_dir, done)
    jobs = os.cpu_count() if jobs is not None and jobs < 0 else jobs   # joblib's -1: one job per CPU
    dirs = [d for d in (Path(sweep_dir) / r for r in runs.run) if (d / ".hydra").is_dir()]   # not jobs never started
    spans = [span(d) for d in dirs if d.joinpath("status.json").exists()]
    started = datetime.fromtimestamp(min(s for s, _ in spans), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    counts = ", ".join(f"{n} {state}" for state, n in runs.status.value_counts().items())
    return [f"    {command}", "",
            f"- commit {commits(dirs)}; sweep started {started}, "
            f"its wall time {busy(spans) / 60:.1f} min (while any run was going) for {len(runs)} runs ({counts})",
            f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, runs at a time: {jobs or 1}, "
            f"OMP_NUM_THREADS={threads(dirs)}; GPU: {gpu_name()}",
            f"- budget: {budget(sweep_dir, done)}",
            f"- data: {done.dataset.iloc[0]}; mean ± std over seeds (std with ddof 1)", ""]


def unfinished(runs, heading):
    """Under `heading`, each run that did not finish, with its status and why; nothing when all finished."""
    failed = runs[runs.status != "done"]
    return [heading, ""] + [f"- `{r.run}`: {r.status} {r.error}" for r in failed.itertuples()] + [""] if len(failed) else []
