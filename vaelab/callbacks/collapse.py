"""Says at the end of testing whether the model's posterior collapsed, and why that is likely."""

import logging

import lightning.pytorch as L

from vaelab.metrics.collapse import message, signs

log = logging.getLogger("vaelab")


class CollapseCheck(L.Callback):
    """After testing, logs test/collapsed (1 or 0) to every logger, so that dashboards and sweep reports
    (results.csv) can flag collapsed runs, and warns with one line naming the signs and the likely cause for
    the estimator in use. `found` keeps the signs (None: not collapsed) for status.json."""

    def __init__(self):
        self.found = None

    def on_test_epoch_end(self, trainer, pl_module):
        self.found = signs(trainer.callback_metrics, pl_module.vae.latent, "test")
        pl_module.log("test/collapsed", float(self.found is not None))
        if self.found:
            log.warning(message(self.found, pl_module.objective))
