"""A run's outcome in RUN_DIR/status.json, for sweep reports, re-runs and resumption:

    {"status": "running" | "done" | "skipped" | "failed" | "interrupted",
     "error": null or a one-line message, "result": the best val/elbo of a run that is done,
     "owner": {"host", "pid", "started"} of the process that wrote it,
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
import sys
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vaelab.errors import ConfigError

STATUS_FILE = "status.json"
LOCK_FILE = ".lock"
OWNER = {"host": socket.gethostname(), "pid": os.getpid(),
         "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
INTERRUPTS = (KeyboardInterrupt, SIGTERMException, SystemExit)   # SystemExit: a scheduler's requeue (submitit)
log = logging.getLogger(__name__)


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
    """Replace RUN_DIR/status.json atomically, so a reader never sees half a file; this process is its owner, and
    `extra` keys are written too."""
    path = Path(run_dir) / STATUS_FILE
    partial = path.with_suffix(".json.partial")
    owner = this_owner()
    partial.write_text(json.dumps({"status": status, "error": error, "result": result, "owner": owner, **extra}) + "\n")
    partial.replace(path)


def this_owner() -> dict:
    """{"host", "pid", "started"} of this process (a forked worker is its own owner)."""
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
    """When fit or test raises, records how the run ended in status.json and tells every logger
    (hyperparameters `status` and `error`) before Lightning finalises them; a test that ends tells them "done"."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.result = None  # what the run returns, stored with "done"
        self.extra = {}     # more keys stored with "done" (collapse)

    def on_test_end(self, trainer, pl_module):
        for logger in trainer.loggers:
            logger.log_hyperparams({"status": "done", "error": None})

    def on_exception(self, trainer, pl_module, exception):
        status, error = outcome(exception)
        write_status(self.run_dir, status, error)
        for logger in trainer.loggers:
            logger.log_hyperparams({"status": status, "error": error})


@contextmanager
def recorded(run_dir, swallow: bool = False):
    """Run the body as the run in `run_dir`, yielding a RunStatus callback for its trainer (set its
    `result` to what the run returns).

    status.json says "running" until the body returns ("done") or raises ("failed"/"interrupted"). The
    exception then goes on to the caller (train.py turns it into a message and an exit code), except with
    `swallow` (a sweep's job), where a failure is logged and swallowed, so the sweep goes on; an interruption
    still ends the process. Either way this process's W&B run, if any, is finished.
    """
    status = RunStatus(run_dir)
    try:
        write_status(run_dir, "running")
        yield status
        write_status(run_dir, "done", result=status.result, **status.extra)
    except BaseException as e:
        if not isinstance(e, SystemExit) and (read_status(run_dir) or {}).get("status") == "running":
            with suppress(OSError):
                write_status(run_dir, *outcome(e))
        ended(run_dir, e, swallow)
    finally:
        finish_wandb(failed=(read_status(run_dir) or {}).get("status") != "done")


def ended(run_dir, e: BaseException, swallow: bool):
    """After `e` was recorded: return to go on (with `swallow`, a sweep's failed job, logged), else re-raise.
    Call it inside `except`."""
    if swallow and isinstance(e, Exception):
        log.exception("failed: %s (recorded in %s)", run_dir, Path(run_dir) / STATUS_FILE)
        return
    raise e


def finish_wandb(failed: bool):
    """End this process's W&B run, if one is open, so that the next job in the process starts its own."""
    wandb = sys.modules.get("wandb")  # loaded only when a W&B logger was built; never import it here
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=int(failed))
