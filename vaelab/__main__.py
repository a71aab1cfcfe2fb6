"""Train one VAE: `python -m vaelab loss=variance latent=discrete` (add -m for a sweep), from any directory once
vaelab is installed; `python train.py ARGS` in a checkout runs this module. Its configs are the package's own
(vaelab.paths.CONF); Hydra's job is named train either way (vaelab/conf/train.yaml), so a run logs to train.log."""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from vaelab.errors import ConfigError, refusal
from vaelab.overrides import check_command_line
from vaelab.paths import CONF
from vaelab.preflight import discard
from vaelab.resolvers import register_resolvers
from vaelab.schema import check_run

log = logging.getLogger("vaelab")
register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="train")
def main(cfg: DictConfig):
    """One run; returns its best val/elbo (what a sweeper maximises).

    A refused configuration stops a single run with exit status 2 and leaves no run folder; a sweep's job
    records it as skipped and the sweep goes on, as it does past a failed job (status.json says which).
    Faults the user must act on end a single run with one line and an exit status instead of a traceback
    (`fault_exit`); anything else is re-raised, a bug to be read in full.
    """
    try:
        check_run(cfg)  # the top-level keys' types: before Lightning and torch load
        from vaelab.compat import quiet_lightning
        from vaelab.lifecycle import lifecycle
        from vaelab.run import BEST, train

        quiet_lightning()
        with lifecycle(cfg) as record:  # the folder's lock; skip, continue or redo; status.json
            if record.todo:
                metrics, objects = train(cfg)
                record.done(metrics.get(BEST), collapse=objects["collapse"].found)
        return record.result
    except BaseException as e:
        if refusal(e) is None:
            fault_exit(e, cfg)
            raise
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            from vaelab.lifecycle import write_status

            run_dir = Path(cfg.resume or hydra_cfg.runtime.output_dir)
            write_status(run_dir, "skipped", str(refusal(e)))
            log.warning("skipped %s: %s", run_dir, refusal(e))
            return float("-inf")
        discard(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir, f"{hydra_cfg.job.name}.log")
        print(f"vaelab: {refusal(e)}", file=sys.stderr)
        sys.exit(2)


def fault_exit(e: BaseException, cfg: DictConfig):
    """Exit for a fault recorded in the run's status.json: SIGTERM exits 143; a non-finite loss, or an OSError
    (disk full, read-only folder), exits 1 with one line. Returns for anything else (Lightning exits 1 itself
    on Ctrl-C)."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from vaelab.callbacks.nonfinite import NonFiniteError

    if isinstance(e, SIGTERMException):
        sys.exit(143)
    if isinstance(e, NonFiniteError):
        sys.exit(f"vaelab: {e}")
    if isinstance(e, OSError):
        where = f"while writing the run in {cfg.resume or HydraConfig.get().runtime.output_dir}"
        sys.exit(f"vaelab: {e.strerror or e}: {e.filename or where}")


def cli():
    """The command line: its overrides checked, grammar, group options and keys (a refusal exits 2), then `main`."""
    try:
        check_command_line(sys.argv[1:])
    except ConfigError as e:
        sys.exit(print(f"vaelab: {e}", file=sys.stderr) or 2)
    main()


if __name__ == "__main__":
    cli()
