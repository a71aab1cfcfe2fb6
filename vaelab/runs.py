"""A run's outcome, kept as a marker file in its directory, so that sweeps can skip, redo and report runs."""

import json
import logging
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from vaelab.errors import config_error

log = logging.getLogger(__name__)

DONE, SKIPPED, FAILED = "done", "skipped", "failed"   # marker file names, also the run's status


def status(run_dir) -> str:
    """done | skipped | failed, from the run's marker; `missing` when none (not run, or killed midway)."""
    return next((name for name in (DONE, SKIPPED, FAILED) if (Path(run_dir) / name).exists()), "missing")


def result(run_dir):
    """What a finished run returned (its best val/elbo), read back from its `done` marker."""
    return json.loads((Path(run_dir) / DONE).read_text())["result"]


class Outcome:
    """Set `.result` inside `recorded` to what the run returns; it is stored in the `done` marker."""
    result = None


@contextmanager
def recorded(run_dir, keep_going: bool):
    """Run the body and leave one marker in `run_dir`: `done` (with the result) when it succeeds,
    `skipped` (the reason) on a ConfigError (also one wrapped by Hydra's instantiate), `failed` (the traceback) on any other exception.

    keep_going (a multirun job): log and swallow the error so that the sweep's other jobs go on.
    Otherwise a ConfigError exits with status 2 and any other error propagates.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (DONE, SKIPPED, FAILED):
        (run_dir / name).unlink(missing_ok=True)
    outcome = Outcome()
    try:
        yield outcome
    except Exception as e:
        refused = config_error(e)
        if refused is None:
            (run_dir / FAILED).write_text(traceback.format_exc())
            if not keep_going:
                raise
            log.exception("failed %s (recorded in %s)", run_dir, run_dir / FAILED)
        else:
            (run_dir / SKIPPED).write_text(f"{refused}\n")
            if not keep_going:
                print(f"vaelab: {refused}", file=sys.stderr)
                sys.exit(2)
            log.warning("skipped %s: %s", run_dir, refused)
    else:
        (run_dir / DONE).write_text(json.dumps({"result": outcome.result}) + "\n")
    finally:
        finish_wandb(failed=not (run_dir / DONE).exists())


def finish_wandb(failed: bool):
    """End this process's W&B run, if one is open, so that the next job in the process starts its own."""
    wandb = sys.modules.get("wandb")    # loaded only when a W&B logger was built; never import it here
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=int(failed))
