"""A checkpoint on pre-emption or Ctrl-C, so that `resume=RUN_DIR` continues from there."""

import lightning.pytorch as L
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

INTERRUPTS = (KeyboardInterrupt, SIGTERMException, SystemExit)   # SystemExit: a scheduler's requeue (submitit)


class InterruptCheckpoint(L.Callback):
    """On SIGTERM (pre-emption) or SIGINT (Ctrl-C) during fit, saves the trainer's state to `path`
    before Lightning exits, so that `resume=RUN_DIR` continues from there."""

    def __init__(self, path):
        self.path = str(path)

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, INTERRUPTS) and trainer.state.fn == TrainerFn.FITTING:
            # a save: Lightning's weights_only chooses what is written (optimizer and loop states too, what resume=
            # needs), not how a file is read; every load in vaelab is torch.load(weights_only=True)
            trainer.save_checkpoint(self.path, weights_only=False)
