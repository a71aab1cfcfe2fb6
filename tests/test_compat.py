"""vaelab.compat against the installed Lightning: each of its assumptions about Lightning's internals is checked
here, so that a Lightning release that changes one fails these tests (and pyproject.toml's pin says which
releases passed)."""

import subprocess
import sys

import lightning.pytorch as L
import pandas as pd
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from vaelab.compat import continue_csv, csv_writer_opened, logs_this_step, set_log_interval


class Tiny(L.LightningModule):
    """One weight fitted to zero; records, at each training step, the step and whether compat says it logs."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.said = []

    def training_step(self, x, batch_idx):
        loss = (self.w * x).pow(2).mean()
        self.said.append((self.global_step, logs_this_step(self.trainer), self.trainer._logger_connector.should_update_logs))
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Interval(L.Callback):
    def setup(self, trainer, pl_module, stage):
        set_log_interval(trainer, 3)


def fit(tmp_path, **kwargs):
    model, logger = Tiny(), CSVLogger(tmp_path, name="", version="")
    trainer = L.Trainer(max_steps=10, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, **kwargs)
    trainer.fit(model, DataLoader(torch.ones(10, 1), batch_size=1))
    written = pd.read_csv(tmp_path / "metrics.csv").dropna(subset=["loss"]).step.tolist()
    return model.said, written


def test_logs_this_step_is_lightnings_rule_and_the_steps_it_writes(tmp_path):
    said, written = fit(tmp_path, log_every_n_steps=4)
    assert [ours for _, ours, _ in said] == [theirs for _, _, theirs in said]
    assert [step for step, ours, _ in said if ours] == written == [3, 7]


def test_a_log_interval_set_after_construction_is_the_one_lightning_logs_at(tmp_path):
    said, written = fit(tmp_path, log_every_n_steps=50, callbacks=[Interval()])
    assert [step for step, ours, _ in said if ours] == written == [2, 5, 8]


def test_a_csv_writer_opens_on_first_use_and_appends_under_a_header_it_is_given(tmp_path):
    logger = CSVLogger(tmp_path, name="", version="")
    assert not csv_writer_opened(logger)
    writer = logger.experiment
    assert csv_writer_opened(logger)
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,loss,step\n0,1.5,0\n")
    continue_csv(writer, ["epoch", "loss", "step"])
    logger.log_metrics({"epoch": 0, "loss": 0.5}, step=1)
    logger.save()
    assert path.read_text() == "epoch,loss,step\n0,1.5,0\n0,0.5,1\n"


def test_lightning_speaks_once_without_advertising_under_a_configured_root_logger(caplog):
    import logging

    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    from vaelab.compat import quiet_lightning

    fresh = subprocess.run([sys.executable, "-c", "import logging, lightning; print(any(type(h) is logging.StreamHandler "
                            "for h in logging.getLogger('lightning').handlers))"], capture_output=True, text=True)
    assert fresh.stdout.strip() == "True", fresh.stderr   # Lightning's "INFO: ..." console, added on import
    own = logging.getLogger("lightning")
    kept = list(own.handlers)
    chain = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.pytorch.utilities",
                                            "lightning.pytorch.utilities.rank_zero")]
    states = [(logger.level, logger.propagate, logger.disabled) for logger in chain]
    for logger in chain:   # as on import: an earlier command run in this process may have set them otherwise
        logger.setLevel(logging.NOTSET)
        logger.propagate, logger.disabled = True, False
    own.addHandler(logging.StreamHandler())
    try:
        caplog.set_level(logging.INFO)       # a root handler, as Hydra's job logging gives
        quiet_lightning()
        assert not any(type(h) is logging.StreamHandler for h in own.handlers)
        rank_zero_info("💡 Tip: try installing [litlogger](https://pypi.org/project/litlogger/)")
        rank_zero_info("GPU available: False, used: False")
        assert [r.getMessage() for r in caplog.records if r.name.startswith("lightning")] == [
            "GPU available: False, used: False"]
    finally:
        own.handlers = kept
        for logger, (level, propagate, disabled) in zip(chain, states):
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled


def test_warnings_raised_inside_lightning_that_users_cannot_act_on_are_filtered_by_name():
    """Each filtered warning is still raised by the installed Lightning (else its filter is dead and goes), and
    only it is filtered: a warning from Lightning elsewhere still shows."""
    import warnings

    from lightning.pytorch.utilities._pytree import _tree_flatten

    from vaelab.compat import UNACTIONABLE, quiet_lightning

    def raised():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
            _tree_flatten(1.0)
            warnings.warn_explicit('`.test(ckpt_path="best")` is called with Trainer configured with multiple '
                                   "`ModelCheckpoint` callbacks.", UserWarning, "checkpoint_connector.py", 1,
                                   module="lightning.pytorch.trainer.connectors.checkpoint_connector")
            warnings.warn_explicit("The number of training batches (4) is smaller than the logging interval",
                                   UserWarning, "fit_loop.py", 1, module="lightning.pytorch.loops.fit_loop")

    for quiet in (False, True):
        steps = raised()
        caught = next(steps)
        if quiet:
            quiet_lightning()
        next(steps, None)
        messages = [str(w.message) for w in caught]
        assert any("logging interval" in m for m in messages)
        assert len(messages) == (1 if quiet else 1 + len(UNACTIONABLE)), messages
