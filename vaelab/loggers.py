"""Lightning's W&B logger, with its run id kept in the run directory."""

import secrets
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger


class ResumableWandbLogger(WandbLogger):
    """WandbLogger whose W&B run id lives in `id_file`: a new run writes a fresh id there, a run started
    again in the same directory reads it back and continues that W&B run (Lightning passes resume='allow')."""

    def __init__(self, id_file, **kwargs):
        path = Path(id_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(6) + "\n")
        super().__init__(id=path.read_text().strip(), **kwargs)
