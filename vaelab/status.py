"""A run's outcome in RUN_DIR/status.json, for sweep reports, re-runs and resumption:

    {"status": "running" | "done" | "failed" | "interrupted", "error": null or a one-line message}
"""

import json
import shutil
import sys
from contextlib import contextmanager, suppress
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vaelab.faults import NonFiniteError

STATUS_FILE = "status.json"
INTERRUPTS = (KeyboardInterrupt, SIGTERMException)


def outcome(exception: BaseException) -> tuple[str, str]:
    """(status, error message) for a run that ended by `exception`."""
    if isinstance(exception, SIGTERMException):
        return "interrupted", "SIGTERM received"
    if isinstance(exception, KeyboardInterrupt):
        return "interrupted", "SIGINT received (Ctrl-C)"
    return "failed", f"{type(exception).__name__}: {exception}"


def write_status(run_dir, status: str, error: str | None = None):
    """Replace RUN_DIR/status.json atomically, so a reader never sees half a file."""
    path = Path(run_dir) / STATUS_FILE
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps({"status": status, "error": error}) + "\n")
    partial.replace(path)


def read_status(run_dir) -> dict | None:
    """RUN_DIR/status.json as a dict, or None for a run that never started."""
    path = Path(run_dir) / STATUS_FILE
    return json.loads(path.read_text()) if path.exists() else None


class RunStatus(L.Callback):
    """When fit or test raises, records how the run ended in status.json and tells every logger
    (hyperparameters `status` and `error`) before Lightning finalises them."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)

    def on_exception(self, trainer, pl_module, exception):
        status, error = outcome(exception)
        write_status(self.run_dir, status, error)
        for logger in trainer.loggers:
            logger.log_hyperparams({"status": status, "error": error})


@contextmanager
def recorded(run_dir, exit: bool = True):
    """Run the body as the run in `run_dir`, yielding a RunStatus callback for its trainer.

    status.json says "running" until the body returns ("done") or raises ("failed"/"interrupted").
    With `exit` (a single run), faults the user must act on end with a message and an exit code
    instead of a traceback: a non-finite loss or an OSError (disk full, read-only folder) exits 1,
    SIGTERM exits 143 (Lightning exits 1 itself on Ctrl-C); anything else is re-raised, a bug to be
    read in full. Without it (a sweep's job) every exception is re-raised for the launcher to record.
    """
    try:
        write_status(run_dir, "running")
        yield RunStatus(run_dir)
        write_status(run_dir, "done")
    except BaseException as e:
        if not isinstance(e, SystemExit) and (read_status(run_dir) or {}).get("status") == "running":
            with suppress(OSError):
                write_status(run_dir, *outcome(e))
        if not exit:
            raise
        if isinstance(e, SIGTERMException):
            sys.exit(143)
        if isinstance(e, NonFiniteError):
            sys.exit(f"vaelab: {e}")
        if isinstance(e, OSError):
            sys.exit(f"vaelab: {e.strerror or e}: {e.filename or f'while writing the run in {run_dir}'}")
        raise


def discard(run_dir, hydra_subdir: str, log_name: str):
    """Remove what Hydra wrote for a run refused before it started: its output subdir, and the folder
    itself when nothing but an empty job log is left (a resumed run's own files stay)."""
    run_dir, subdir = Path(run_dir), Path(run_dir) / hydra_subdir
    shutil.rmtree(subdir, ignore_errors=True)
    for folder in [*subdir.parents][: len(Path(hydra_subdir).parts) - 1]:
        with suppress(OSError):
            folder.rmdir()  # only when empty
    if all(p.name == log_name and p.stat().st_size == 0 for p in run_dir.iterdir()):
        shutil.rmtree(run_dir)
