"""Interrupted runs leave a checkpoint, and `resume=RUN_DIR` continues them exactly."""

import csv
import json
import os
import signal
import subprocess
import time

import lightning.pytorch as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import ROOT
from tests.runs.test_checkpoints import run_folder
from vaelab.errors import ConfigError
from vaelab.resume import continue_run, saved_run

RUN = ["dataset=digits", "loss=vargrad", "latent=discrete", "trainer.limit_train_batches=3",
       "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1"]


def rows(run_dir):
    """The logged rows, less wall-clock measurements (cost/, time/), which no two runs share."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        found = [{k: v for k, v in r.items() if v and not k.startswith(("cost/", "time/"))} for r in csv.DictReader(f)]
    return [r for r in found if set(r) - {"epoch", "step"}]


def status(run_dir):
    return json.loads((run_dir / "status.json").read_text())


def test_a_resumed_run_ends_exactly_as_an_uninterrupted_one(train):
    # an objective with parameters of its own (NVIL's network, in its own optimiser group) and running state
    learning = [a for a in RUN if not a.startswith("loss=")] + ["loss=reinforce", "loss.baseline=nvil"]
    whole, parts = train.dir / "whole", train.dir / "parts"
    train(*learning, "trainer.max_epochs=2", f"hydra.run.dir={whole}")
    train(*learning, "trainer.max_epochs=1", f"hydra.run.dir={parts}")
    assert {r["epoch"] for r in rows(parts) if "val/elbo" in r} == {"0"}
    # another seed must not matter: the weights, optimizer and random state come from the checkpoint
    resumed = train(f"resume={parts}", "trainer.max_epochs=2", "seed=1", "dataset=digits")
    said = resumed.stdout + resumed.stderr   # Lightning's messages go through Hydra's console handler, to stdout
    assert f"Restoring states from the checkpoint path at {parts / 'checkpoints' / 'last.ckpt'}" in said
    assert rows(parts) == rows(whole)
    assert any("test/elbo" in r for r in rows(parts)) and any(r.get("epoch") == "1" for r in rows(parts))
    assert status(parts)["status"] == "done" and status(parts)["result"] == status(whole)["result"]
    assert OmegaConf.load(parts / "config.yaml").trainer.max_epochs == 2
    assert OmegaConf.load(parts / ".hydra" / "config.yaml").trainer.max_epochs == 1  # the original record stays


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 1)])
def test_a_signal_writes_a_checkpoint_and_the_run_resumes(train, signum, code):
    first = train.dir / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(train.command(*RUN, "trainer.max_epochs=10000"), cwd=train.dir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-2000:]
    assert status(train.dir)["status"] == "interrupted"
    saved = torch.load(first, weights_only=True)
    assert saved["global_step"] >= 3
    assert "Traceback" not in stderr
    train(f"resume={train.dir}", f"trainer.max_epochs={saved['epoch'] + 2}", "dataset=digits")
    assert status(train.dir)["status"] == "done"
    assert torch.load(first, weights_only=True)["global_step"] > saved["global_step"]


def test_resume_refuses_another_config_group_and_leaves_the_run_alone(train):
    train(*RUN, "trainer.max_epochs=1")
    before = sorted(p.relative_to(train.dir) for p in train.dir.rglob("*"))
    result = train(f"resume={train.dir}", "loss=elbo", "dataset=digits", check=False)
    assert result.returncode == 2
    assert "loss='elbo' is not accepted: 'vargrad', the run's own" in result.stderr
    assert sorted(p.relative_to(train.dir) for p in train.dir.rglob("*")) == before


def test_a_moved_run_folder_resumes_where_it_lies(train, tmp_path_factory):
    started, moved = train.dir / "started", tmp_path_factory.mktemp("elsewhere") / "moved"
    train(*RUN, "trainer.max_epochs=1", f"hydra.run.dir={started}")
    started.rename(moved)
    step = torch.load(moved / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    train(f"resume={moved}", "trainer.max_epochs=2", "dataset=digits")
    assert json.loads((moved / "status.json").read_text())["status"] == "done"
    assert torch.load(moved / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] > step
    assert not started.exists()  # nothing written where the run used to be


def test_resume_of_a_folder_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="resume=.* a run folder holding checkpoints/last.ckpt"):
        saved_run(tmp_path, [])


def test_resume_continues_the_wandb_run(tmp_path, monkeypatch):
    run_folder(tmp_path, {"global_step": 3, "state_dict": {}})
    (tmp_path / "wandb_id").write_text("abc123\n")
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    monkeypatch.delenv("WANDB_RESUME", raising=False)
    cfg, choices, step = saved_run(tmp_path, [f"resume={tmp_path}", "trainer.max_epochs=3", "loss=elbo"])
    assert (cfg.S, cfg.trainer.max_epochs, choices["loss"]) == (1, 3, "elbo")
    continue_run(tmp_path, step)
    assert os.environ["WANDB_RUN_ID"] == "abc123" and os.environ["WANDB_RESUME"] == "allow"
    with pytest.raises(ConfigError, match="trainer.epochs"):
        saved_run(tmp_path, ["trainer.epochs=3"])


class Worsening(L.LightningModule):
    """Trains a scalar; its val/elbo gets worse every epoch, so best.ckpt is epoch 0's."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, x, batch_idx):
        return (self.w - x).pow(2).mean()

    def validation_step(self, x, batch_idx):
        self.log("val/elbo", -float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_last_checkpoint_is_every_epochs_end_even_when_val_elbo_does_not_improve(tmp_path):
    """train.py's checkpoint callbacks: last.ckpt follows training (Lightning 2.6's save_last follows best.ckpt)."""
    with initialize_config_dir(str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra.runtime.output_dir={tmp_path}"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        checkpoints = [instantiate(cfg.callbacks.checkpoint), instantiate(cfg.callbacks.last)]
    data = torch.utils.data.DataLoader(torch.ones(4, 1), batch_size=2)
    L.Trainer(max_epochs=3, callbacks=checkpoints, logger=False, enable_progress_bar=False,
              enable_model_summary=False).fit(Worsening(), data, data)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 6)
    assert (best["epoch"], best["global_step"]) == (0, 2)
