"""Checks that need neither data nor a model, run before any work starts, and the clean-up of a refused run."""

import difflib
import shutil
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

from vaelab.errors import ConfigError, require
from vaelab.schema import constructed, quiet

SPAWNING = ("spawn", "fork", "notebook")  # strategies whose processes Lightning starts from this one, not as scripts
PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "bf16-true")  # those that train end to end, figures included
FLOAT16_WEIGHTS = ("16-true", "transformer-engine-float16")  # float16 weights: exp of the encoder's log-scale overflows


def group_options(conf: Path, group: str) -> list[str]:
    """The options of config group `group`: its .yaml files under `conf`, without the suffix."""
    folder = conf / group
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))


def check_choices(conf: Path, choices: Iterable[tuple[str, str]]):
    """Refuse a group option with no config file, naming the options and the nearest ones by spelling."""
    for group, value in choices:
        options = group_options(conf, group)
        if value in options:
            continue
        near = difflib.get_close_matches(value, options, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(f'{group}={n}' for n in near)}?" if near else ""
        raise ConfigError(f"{group}={value!r} is not accepted: one of {', '.join(options)}{hint}")


def check_budget(trainer):
    """Refuse a training budget that cannot train: max_epochs and max_steps are positive, or -1 for no limit;
    limit_train_batches takes some batches (Lightning takes 0 and trains nothing); and a log interval that is
    neither null (chosen so that every epoch logs) nor a positive count (training logs, measures cost and
    refreshes the progress bar by it)."""
    for key in ("max_epochs", "max_steps"):
        value = trainer.get(key)
        ok = value is None or (isinstance(value, int) and (value == -1 or value >= 1))
        require(ok, f"trainer.{key}", value, "a positive integer, or -1 for no limit")
    value = trainer.get("limit_train_batches")
    ok = value is None or (isinstance(value, int) and value >= 1) or (isinstance(value, float) and 0 < value <= 1)
    require(ok and not isinstance(value, bool), "trainer.limit_train_batches", value,
            "a positive number of batches, a fraction in (0, 1] of them, or null for all")
    value = trainer.get("log_every_n_steps")
    require(value is None or (isinstance(value, int) and value >= 1), "trainer.log_every_n_steps", value,
            "a positive integer, or null for min(50, training batches per epoch)")


def check_trainer(trainer):
    """Build the configured Trainer once, without loggers or callbacks, so that Lightning refuses what it cannot
    run (trainer.devices=0; trainer.accelerator=gpu without a GPU) before anything is written, the refusal naming
    the key. Strategies that start their processes from this one (ddp_spawn, ddp_fork, ddp_notebook) are refused:
    their processes hand nothing back to the run's record, so the run cannot be tested and recorded after fit.
    Float16 weights are refused: their range ends at 65504, and the first validation fails on a scale of inf or 0
    (16-mixed keeps float32 weights and trains)."""
    precision = trainer.get("precision")
    require(str(precision) not in FLOAT16_WEIGHTS, "trainer.precision", precision,
            f"one of {', '.join(PRECISIONS)} (or 16, bf16, 32, 64), or null for 32-true; float16 weights overflow, "
            "16-mixed keeps them in float32")
    strategy = trainer.get("strategy", "auto")
    require(not (isinstance(strategy, str) and any(s in strategy for s in SPAWNING)), "trainer.strategy", strategy,
            "auto, ddp, or another strategy that starts each process as a script (Lightning's ddp launches "
            "train.py once a device; ddp_spawn, ddp_fork and ddp_notebook cannot test and record the run)")
    with quiet("lightning.pytorch"):
        constructed(trainer, "trainer", logger=False, callbacks=[])


def check_data(datamodule):
    """Find a file-backed data set's files now (`datamodule.files()`: existence and checksums), so that a
    missing root or a corrupted file stops the run before anything is written."""
    files = getattr(datamodule, "files", None)
    if files is None:
        return
    try:
        files()
    except (OSError, ValueError) as e:
        raise ConfigError(f"data_dir={str(datamodule.root)!r} is not accepted: {e}") from e


def discard(run_dir, hydra_subdir: str | None, log_name: str):
    """Remove what Hydra wrote for a run refused before it started: its output subdir, and the folder
    itself when nothing but the job log is left, which holds only the lines logged before the refusal (a resumed
    run's own files stay)."""
    run_dir = Path(run_dir)
    if hydra_subdir is not None:  # None: Hydra wrote no subdir (as in the further processes of DDP)
        subdir = run_dir / hydra_subdir
        shutil.rmtree(subdir, ignore_errors=True)
        for folder in [*subdir.parents][: len(Path(hydra_subdir).parts) - 1]:
            with suppress(OSError):
                folder.rmdir()  # only when empty
    if all(p.name == log_name for p in run_dir.iterdir()):
        shutil.rmtree(run_dir)
