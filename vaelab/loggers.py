"""Lightning's loggers, made to continue a run: the CSV file kept, the W&B run id kept in the run directory."""

import csv
import io
import secrets
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, WandbLogger


class ResumableWandbLogger(WandbLogger):
    """WandbLogger whose W&B run id lives in `id_file`: a new run writes a fresh id there, a run started
    again in the same directory reads it back and continues that W&B run (Lightning passes resume='allow')."""

    def __init__(self, id_file, **kwargs):
        path = Path(id_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(6) + "\n")
        super().__init__(id=path.read_text().strip(), **kwargs)


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that it continues an existing metrics.csv (a resumed run) where
    Lightning's would delete it."""

    @property
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = Path(self.log_dir) / "metrics.csv"
        kept = path.read_text() if path.exists() else None
        experiment = super().experiment
        if kept:
            path.write_text(kept)
            experiment.metrics_keys = next(csv.reader(io.StringIO(kept)))
        return experiment
