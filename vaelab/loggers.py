"""Lightning's loggers, made to continue a run (the CSV file kept, the W&B run id kept in the run directory) and
to summarise it: W&B's summary keeps the best val/elbo, TensorBoard's HParams tab gets the run's keys and results."""

import csv
import io
import os
import secrets
import typing
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from vaelab.compat import continue_csv, csv_writer_opened
from vaelab.errors import ConfigError

BEST = "val/elbo_best"
RESULTS = ("test/elbo", "test/nll", "test/collapsed")


class ResumableWandbLogger(WandbLogger):
    """WandbLogger whose W&B run id lives in `id_file`: a new run writes a fresh id there, a run started
    again in the same directory reads it back and continues that W&B run (Lightning passes resume='allow')."""

    def __init__(self, id_file, tags: list[str] | None = None, **kwargs):
        path = Path(id_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(6) + "\n")
        super().__init__(id=path.read_text().strip(), tags=tags, **kwargs)
        self.defined = False

    @staticmethod
    def preflight():
        """Refuse a WANDB_MODE that W&B's own settings refuse, naming the modes they accept (wandb.Settings.mode's
        values): wandb.init would refuse it only after the run folder is written."""
        mode = os.environ.get("WANDB_MODE")
        if mode is None:
            return
        import wandb

        try:
            wandb.Settings(mode=mode)
        except ValueError:   # pydantic's ValidationError
            accepted = typing.get_args(wandb.Settings.model_fields["mode"].annotation)
            raise ConfigError(f"WANDB_MODE={mode!r} is not accepted: one of {', '.join(accepted)} (the environment "
                              "variable sets W&B's mode)") from None

    @property
    def experiment(self):
        """The W&B run, whose summary keeps the largest val/elbo rather than the last."""
        run = super().experiment
        if not self.defined and hasattr(run, "define_metric"):
            run.define_metric("val/elbo", summary="max")
            self.defined = True
        return run

    def after_save_checkpoint(self, checkpoint_callback):
        """With log_model, only checkpoints ranked by a monitored metric (checkpoints/best.ckpt) go to W&B: the
        unranked last.ckpt, the resume state rewritten every epoch, would upload the model a second time, and
        with the alias "best"."""
        if checkpoint_callback.monitor is not None:
            super().after_save_checkpoint(checkpoint_callback)


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that it continues an existing metrics.csv (a resumed run) where
    Lightning's would delete it."""

    @property
    def experiment(self):
        if csv_writer_opened(self):
            return super().experiment
        path = Path(self.log_dir) / "metrics.csv"
        kept = path.read_text() if path.exists() else None
        experiment = super().experiment
        if kept:
            path.write_text(kept)
            continue_csv(experiment, next(csv.reader(io.StringIO(kept))))
        return experiment


class HParamsTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoardLogger, that also fills TensorBoard's HParams tab: when a test has finished, the
    flat hyperparameters logged (loss, latent, S, dataset, lr, seed, ...; nested ones only go to hparams.yaml)
    against the best val/elbo seen (as val/elbo_best) and the test results, so that runs filter by estimator."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flat, self.results, self.step = {}, {}, None

    def log_hyperparams(self, params, metrics=None, step=None):
        self.flat.update({k: v for k, v in params.items() if isinstance(v, str | int | float | bool)})
        super().log_hyperparams(params, metrics, step)

    def log_metrics(self, metrics, step=None):
        if "val/elbo" in metrics:
            self.results[BEST] = max(self.results.get(BEST, -float("inf")), float(metrics["val/elbo"]))
        self.results.update({k: float(v) for k, v in metrics.items() if k in RESULTS})
        self.step = step
        super().log_metrics(metrics, step)

    def finalize(self, status):
        if status == "success" and "test/elbo" in self.results:
            super().log_hyperparams(self.flat, dict(self.results), self.step)
        super().finalize(status)
