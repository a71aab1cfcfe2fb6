"""What W&B and TensorBoard record of a run, read back from W&B's offline files and TensorBoard's event files:
names, groups, flat keys, the best val/elbo in the summary, `status: done`, the HParams tab, images once."""

import collections
import json
import os
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

import sweep
from tests.conftest import ROOT
from tests.wandb_records import offline_run, records
from vaelab.resolvers import SWEEP_GROUP

# 5 epochs with figures every 5: the last epoch's pictures and the end's fall on the same step
RUN = ["dataset=digits", "loss=reinforce", "latent=discrete", "logger=[csv,wandb,tensorboard]", "trainer.max_epochs=5",
       "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "nll_samples=10",
       "extras.print_config=false", "logger.wandb.log_model=true"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dash")
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={folder}", *RUN], cwd=folder,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_wandb_records_name_flat_keys_best_elbo_status_and_each_image_once(run_dir):
    [log] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    run, config, history, summary = offline_run(log)
    assert run.display_name == "reinforce-discrete-S8-digits-seed0"
    assert {k: config[k] for k in ("loss", "latent", "dataset", "S", "lr", "seed", "loss.baseline", "loss.decay")} == \
        {"loss": "reinforce", "latent": "discrete", "dataset": "digits", "S": 8, "lr": 0.001, "seed": 0,
         "loss.baseline": "loo", "loss.decay": 0.9}
    assert config["status"] == "done"
    assert summary["val/elbo"] == {"max": max(h["val/elbo"] for h in history if "val/elbo" in h)}
    assert summary["test/collapsed"] in (0, 1)
    sent = collections.Counter((h["trainer/global_step"], key.split("/")[1]) for h in history
                               for key in h if key.startswith("figures/") and key.endswith("/count"))
    assert {name for _, name in sent} >= {"reconstructions", "prior_samples", "traversal", "learning_curves"}
    assert set(sent.values()) == {1}, sent


def test_wandb_log_model_uploads_the_best_checkpoint_once(run_dir):
    [log] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    uploads = [r.artifact for r in records(log) if r.WhichOneof("record_type") == "artifact"]
    assert [json.loads(a.metadata)["original_filename"] for a in uploads] == ["best.ckpt"]
    assert set(uploads[0].aliases) == {"latest", "best"}


def test_tensorboard_hparams_tab_has_the_run_keys_and_results(run_dir):
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    data = {tag: HParamsPluginData.FromString(raw) for tag, raw in events.PluginTagToContent("hparams").items()}
    hparams = data["_hparams_/session_start_info"].session_start_info.hparams
    values = {k: getattr(v, v.WhichOneof("kind")) for k, v in hparams.items()}
    assert {k: values[k] for k in ("loss", "latent", "dataset", "S", "lr", "seed")} == \
        {"loss": "reinforce", "latent": "discrete", "dataset": "digits", "S": 8, "lr": 0.001, "seed": 0}
    metrics = {m.name.tag for m in data["_hparams_/experiment"].experiment.metric_infos}
    assert {"val/elbo_best", "test/nll", "test/elbo"} <= metrics
    (best,) = events.Scalars("val/elbo_best")
    assert best.value == pytest.approx(max(e.value for e in events.Scalars("val/elbo")))
    for tag in events.Tags()["images"]:
        steps = [image.step for image in events.Images(tag)]
        assert len(steps) == len(set(steps)), (tag, steps)


def test_each_sweep_invocation_gets_its_own_wandb_group_unless_one_is_named(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(sweep.subprocess, "run", lambda command, env: seen.append(env[SWEEP_GROUP]) or
                        type("Done", (), {"returncode": 0}))
    monkeypatch.delenv(SWEEP_GROUP, raising=False)
    sweep.run("estimators", [], tmp_path)
    sweep.run("estimators", [], tmp_path)
    assert seen[0].startswith("estimators-") and seen[1].startswith("estimators-") and seen[0] != seen[1]
    monkeypatch.setenv(SWEEP_GROUP, "mine")
    sweep.run("estimators", [], tmp_path)
    assert seen[2] == "mine"
