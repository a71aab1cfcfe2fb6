"""A run's life in its folder: the lock, whether to train it at all, and its outcome in RUN_DIR/status.json.

    with lifecycle(cfg) as record:
        if record.todo:
            record.done(*what training returns)

status.json: {"status": "running" | "done" | "skipped" | "failed" | "interrupted",
     "error": null or a one-line message, "result": the best val/elbo of a run that is done,
     "owner": {"host", "pid", "started", "commit", "threads"} of the process that wrote it (for reports: commit,
              vaelab's; threads, its OMP_NUM_THREADS or null where unset),
     "collapse": null, or the signs of posterior collapse at test (vaelab.metrics.collapse)}

"skipped" is a sweep's job whose configuration was refused (an invalid combination in a grid).
While a process works on a run it holds an exclusive lock on RUN_DIR/.lock (flock: the kernel drops it
when the process ends, however it ends), so a second process is refused, and a run recorded as "running"
whose lock nobody holds has died (kill -9, a lost machine, a full disk): `status_of` calls it "died".
"""

import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import lightning.pytorch as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vaelab.atomic import replacing
from vaelab.errors import ConfigError, refusal, require
from vaelab.resume import CHECKPOINT, trim_metrics

STATUS_FILE = "status.json"
LOCK_FILE = ".lock"


def code_commit() -> str | None:
    """The git commit of the vaelab code this process runs, `-dirty` when its tracked files differ from it; None for
    an installed vaelab outside a git checkout."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


OWNER = {"host": socket.gethostname(), "pid": os.getpid(),
         "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": code_commit(),
         "threads": os.environ.get("OMP_NUM_THREADS")}
log = logging.getLogger("vaelab")


def outcome(exception: BaseException) -> tuple[str, str]:
    """(status, error message) for a run that ended by `exception`."""
    if isinstance(exception, SIGTERMException):
        return "interrupted", "SIGTERM received"
    if isinstance(exception, KeyboardInterrupt):
        return "interrupted", "SIGINT received (Ctrl-C)"
    if isinstance(exception, SystemExit):
        return "interrupted", f"exit requested ({exception.code}), e.g. by a SLURM requeue"
    return "failed", f"{type(exception).__name__}: {exception}"


def write_status(run_dir, status: str, error: str | None = None, result: float | None = None, **extra):
    """Replace RUN_DIR/status.json atomically (`replacing`), so a reader never sees half a file and a failed write
    leaves the previous one; this process is its owner, and `extra` keys are written too."""
    record = {"status": status, "error": error, "result": result, "owner": this_owner(), **extra}
    with replacing(Path(run_dir) / STATUS_FILE) as f:
        f.write((json.dumps(record) + "\n").encode())


def this_owner() -> dict:
    """{"host", "pid", "started", "commit", "threads"} of this process (a forked worker is its own owner)."""
    return {**OWNER, "pid": os.getpid()}


def read_status(run_dir) -> dict | None:
    """RUN_DIR/status.json as a dict, or None for a run that never started."""
    path = Path(run_dir) / STATUS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as e:
        return {"status": "failed", "error": f"{STATUS_FILE} cannot be read: {e}"}


def status_of(run_dir) -> str:
    """The run's status: "missing" for one that never started, "died" for one recorded as running whose
    owner is gone (its lock is free)."""
    status = (read_status(run_dir) or {}).get("status", "missing")
    return "died" if status == "running" and not locked(run_dir) else status


def locked(run_dir) -> bool:
    """Whether a process holds the run folder's lock now."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here


class RunBusy(ConfigError):
    """Another live process works on the run folder."""


def owner_text(run_dir) -> str:
    """The process that holds the folder's lock, as it wrote itself into the lock file when it took it (status.json
    may still name an earlier, dead owner that the holder is about to continue)."""
    try:
        owner = json.loads((Path(run_dir) / LOCK_FILE).read_text())
    except (OSError, ValueError):
        owner = (read_status(run_dir) or {}).get("owner") or {}
    return ", ".join(f"{k} {owner[k]}" for k in ("host", "pid", "started") if k in owner) or "owner unrecorded"


@contextmanager
def held(run_dir, key: str):
    """Hold the exclusive lock on `run_dir` for the body, or raise RunBusy naming `key` (the config key that
    chose the folder) and the process that holds it. The lock file stays (removing it would let two
    processes lock two files under one name); a run refused before it recorded anything leaves none."""
    path = Path(run_dir) / LOCK_FILE
    fresh = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunBusy(f"{key}={str(run_dir)!r} is not accepted: another process works on this run folder "
                      f"({owner_text(run_dir)}); wait for it to end, or stop it first") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(this_owner()).encode(), 0)
        yield
    finally:
        if fresh and read_status(run_dir) is None:
            path.unlink(missing_ok=True)
        os.close(fd)


class RunStatus(L.Callback):
    """status.json says "running" from the moment the trainer sets up to fit; when fit or test raises, the callback
    records how the run ended and tells every logger (hyperparameters `status` and `error`) before Lightning
    finalises them; a test that ends tells them "done"."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)

    def setup(self, trainer, pl_module, stage):
        if stage == "fit":
            write_status(self.run_dir, "running")

    def on_test_end(self, trainer, pl_module):
        for logger in trainer.loggers:
            logger.log_hyperparams({"status": "done", "error": None})

    def on_exception(self, trainer, pl_module, exception):
        status, error = outcome(exception)
        write_status(self.run_dir, status, error)
        for logger in trainer.loggers:
            logger.log_hyperparams({"status": status, "error": error})


@dataclass
class Record:
    """What `lifecycle` yields: whether the run is to be trained (`todo`), and its result (the best val/elbo, what
    a sweeper maximises: -inf for a run that did not finish) and further keys, stored with "done"."""

    run_dir: Path
    todo: bool = True
    result: float | None = None
    extra: dict = field(default_factory=dict)

    def done(self, result: float | None, **extra):
        self.result, self.extra = result, extra


@contextmanager
def lifecycle(cfg):
    """The run Hydra is running, in its folder, for the body to train when `todo`.

    The process holds the run folder's lock throughout, so a second process on the folder is refused (a single
    run raises RunBusy; a sweep's job leaves the folder to its owner, not todo). With skip_finished=true a run
    already done is not todo and keeps its recorded result. A sweep's job found interrupted, or dead (recorded
    as running with nobody holding its lock), continues from its last checkpoint as `resume=` would (cfg.resume
    is set); any other job found started is redone from the start, its old metrics rows dropped.
    Then `recorded`: the outcome goes to status.json.
    """
    hydra_cfg = HydraConfig.get()
    run_dir = Path(cfg.resume or hydra_cfg.runtime.output_dir).absolute()
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if cfg.resume:  # before the lock, which would be taken in a folder that may not exist
        require((run_dir / CHECKPOINT).exists(), "resume", str(run_dir), f"a run folder holding {CHECKPOINT}")
    with ExitStack() as lock:
        try:  # under DDP, Lightning starts the script again for each further rank: rank 0 owns the folder
            if rank_zero_only.rank == 0:
                lock.enter_context(held(run_dir, "resume" if cfg.resume else "hydra.run.dir"))
        except RunBusy as e:
            if not sweep:
                raise
            log.warning("left alone: %s", e)
            yield Record(run_dir, todo=False, result=float("-inf"))
            return
        record = decided(cfg, run_dir, sweep)
        if not record.todo:
            yield record
            return
        with recorded(record, swallow=sweep):
            yield record


def decided(cfg, run_dir: Path, sweep: bool) -> Record:
    """The run to do in `run_dir`, from what its status.json says (see `lifecycle`)."""
    saved = read_status(run_dir) or {}
    before = saved.get("status")
    if cfg.skip_finished and before == "done":
        log.info("%s is done already (skip_finished=true)", run_dir)
        return Record(run_dir, todo=False, result=saved["result"])
    if sweep and not cfg.resume and before is not None:
        if before in ("running", "interrupted") and (run_dir / CHECKPOINT).exists():
            log.info("%s was %s: continuing it from %s", run_dir, "interrupted" if before == "interrupted" else
                     "left running by a process that died", CHECKPOINT)
            cfg.resume = str(run_dir)
        else:
            trim_metrics(run_dir, 0)
    return Record(run_dir)


@contextmanager
def recorded(record: Record, swallow: bool):
    """Run the body as the run in `record.run_dir`: status.json says "done" when it returns (with `record.result`
    and `extra`), and "failed"/"interrupted" when it raises (but a refusal, which never started the run, is left
    to the caller; an exit after Ctrl-C or a requeue is recorded by `RunStatus`). The exception then goes on to the
    caller (train.py turns it into a message and an exit code), except with `swallow` (a sweep's job), where a
    failure is logged and swallowed with result -inf, so the sweep goes on; an interruption still ends the
    process. Either way this process's W&B run, if any, is finished."""
    run_dir = record.run_dir
    try:
        yield
        write_status(run_dir, "done", result=record.result, **record.extra)
    except BaseException as e:
        record.result = float("-inf")
        if refusal(e) is not None:
            raise
        if not isinstance(e, SystemExit):
            with suppress(OSError):
                write_status(run_dir, *outcome(e))
        if not (swallow and isinstance(e, Exception)):
            raise
        log.exception("failed: %s (recorded in %s)", run_dir, run_dir / STATUS_FILE)
    finally:
        finish_wandb(failed=(read_status(run_dir) or {}).get("status") != "done")


def finish_wandb(failed: bool):
    """End this process's W&B run, if one is open, so that the next job in the process starts its own."""
    wandb = sys.modules.get("wandb")  # loaded only when a W&B logger was built; never import it here
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=int(failed))
