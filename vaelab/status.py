"""A run's outcome in RUN_DIR/status.json, for sweep reports, re-runs and resumption:

    {"status": "running" | "done" | "skipped" | "failed" | "interrupted",
     "error": null or a one-line message, "result": the best val/elbo of a run that is done,
     "collapse": null, or the signs of posterior collapse at test (vaelab.metrics.collapse)}

"skipped" is a sweep's job whose configuration was refused (an invalid combination in a grid).
"""

import json
import logging
import sys
from contextlib import contextmanager, suppress
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vaelab.callbacks.nonfinite import NonFiniteError

STATUS_FILE = "status.json"
INTERRUPTS = (KeyboardInterrupt, SIGTERMException)
log = logging.getLogger(__name__)


def outcome(exception: BaseException) -> tuple[str, str]:
    """(status, error message) for a run that ended by `exception`."""
    if isinstance(exception, SIGTERMException):
        return "interrupted", "SIGTERM received"
    if isinstance(exception, KeyboardInterrupt):
        return "interrupted", "SIGINT received (Ctrl-C)"
    return "failed", f"{type(exception).__name__}: {exception}"


def write_status(run_dir, status: str, error: str | None = None, result: float | None = None, **extra):
    """Replace RUN_DIR/status.json atomically, so a reader never sees half a file; `extra` keys are written too."""
    path = Path(run_dir) / STATUS_FILE
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps({"status": status, "error": error, "result": result, **extra}) + "\n")
    partial.replace(path)


def read_status(run_dir) -> dict | None:
    """RUN_DIR/status.json as a dict, or None for a run that never started."""
    path = Path(run_dir) / STATUS_FILE
    return json.loads(path.read_text()) if path.exists() else None


def status_of(run_dir) -> str:
    """The run's status, or "missing" for one that never started."""
    return (read_status(run_dir) or {}).get("status", "missing")


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
def recorded(run_dir, exit: bool = True):
    """Run the body as the run in `run_dir`, yielding a RunStatus callback for its trainer (set its
    `result` to what the run returns).

    status.json says "running" until the body returns ("done") or raises ("failed"/"interrupted").
    With `exit` (a single run), faults the user must act on end with a message and an exit code
    instead of a traceback: a non-finite loss or an OSError (disk full, read-only folder) exits 1,
    SIGTERM exits 143 (Lightning exits 1 itself on Ctrl-C); anything else is re-raised, a bug to be
    read in full. Without it (a sweep's job) a failure is logged and swallowed, so the sweep goes on;
    an interruption still ends the process. Either way this process's W&B run, if any, is finished.
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
        if not exit and isinstance(e, Exception) and not isinstance(e, SIGTERMException):
            log.exception("failed: %s (recorded in %s)", run_dir, Path(run_dir) / STATUS_FILE)
            return
        if isinstance(e, SIGTERMException):
            sys.exit(143)
        if isinstance(e, NonFiniteError):
            sys.exit(f"vaelab: {e}")
        if isinstance(e, OSError):
            sys.exit(f"vaelab: {e.strerror or e}: {e.filename or f'while writing the run in {run_dir}'}")
        raise
    finally:
        finish_wandb(failed=status_of(run_dir) != "done")


def finish_wandb(failed: bool):
    """End this process's W&B run, if one is open, so that the next job in the process starts its own."""
    wandb = sys.modules.get("wandb")  # loaded only when a W&B logger was built; never import it here
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=int(failed))
