"""Faults survived: a non-finite step stops the run cleanly (or is skipped), a full disk is a message."""

import csv
import json
import math
from types import SimpleNamespace

import pytest
import torch
import yaml

from vaelab.callbacks.nonfinite import NonFinite, NonFiniteError

BUDGET = ["trainer.max_epochs=3", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
          "trainer.limit_test_batches=1", "trainer.log_every_n_steps=1"]
NAN_AT = "loss._target_=tests.faulty.NaNAt"


def adam_after_one_step():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    return model, optimizer


def snapshot(model, optimizer):
    state = [{k: v.clone() for k, v in s.items()} for s in optimizer.state.values()]
    return [p.detach().clone() for p in model.parameters()], state


def step(callback, model, optimizer, loss, global_step=7):
    callback.on_before_backward(None, None, loss)
    loss.backward()
    trainer = SimpleNamespace(global_step=global_step, current_epoch=2, precision="32-true", optimizers=[optimizer],
                              checkpoint_callbacks=[])
    callback.on_before_optimizer_step(trainer, model, optimizer)
    optimizer.step()
    optimizer.zero_grad()
    return trainer


@pytest.mark.parametrize("fault", ["nan loss", "inf gradient"])
def test_skip_leaves_parameters_and_optimizer_moments_untouched(fault):
    model, optimizer = adam_after_one_step()
    params, state = snapshot(model, optimizer)
    callback = NonFinite("skip")
    out = model(torch.ones(4, 3)).sum()
    # sqrt at 0: a finite loss with a non-finite gradient, which the loss alone would not show
    loss = out * float("nan") if fault == "nan loss" else out + torch.sqrt(model.bias.abs().sum() * 0)
    step(callback, model, optimizer, loss)
    assert callback.skipped == 1
    after, after_state = snapshot(model, optimizer)
    assert all(torch.equal(a, b) for a, b in zip(params, after))
    assert all(torch.equal(s[k], t[k]) for s, t in zip(state, after_state) for k in s)


def test_large_finite_half_precision_gradients_are_not_taken_for_non_finite():
    model = torch.nn.Linear(1000, 100).half()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    callback = NonFinite("stop", every_n_steps=1)
    loss = model.weight.sum() + model.bias.sum()  # every gradient is 1: they sum to 100100, above float16's 65504
    step(callback, model, optimizer, loss)
    assert callback.pending == []


def test_a_finite_step_is_taken_and_stop_raises_naming_the_step():
    model, optimizer = adam_after_one_step()
    params, _ = snapshot(model, optimizer)
    callback = NonFinite("stop", every_n_steps=1)
    step(callback, model, optimizer, model(torch.ones(4, 3)).sum())
    assert not any(torch.equal(a, b) for a, b in zip(params, snapshot(model, optimizer)[0]))
    with pytest.raises(NonFiniteError, match=r"at step 7 \(epoch 2\): loss=nan.*Linear"):
        step(callback, model, optimizer, model(torch.ones(4, 3)).sum() * float("nan"))


def test_stop_names_the_parameters_whose_gradients_are_non_finite():
    model, optimizer = adam_after_one_step()
    callback = NonFinite("stop", every_n_steps=1)
    out = model(torch.ones(4, 3)).sum()
    # sqrt at 0: the loss stays finite, the bias's gradient is nan, the weight's is finite
    with pytest.raises(NonFiniteError, match=r"loss=[-0-9.e]+, non-finite gradients: bias; objective Linear"):
        step(callback, model, optimizer, out + torch.sqrt(model.bias.abs().sum() * 0))


def test_checked_every_n_steps_stop_names_the_first_bad_step_at_the_check():
    model, optimizer = adam_after_one_step()
    callback = NonFinite("stop", every_n_steps=3)
    for n in (10, 11):  # 11 is bad, but the steps only queue their values until the third
        step(callback, model, optimizer, model(torch.ones(4, 3)).sum() * (float("nan") if n == 11 else 1), n)
    with pytest.raises(NonFiniteError, match=r"at step 11 \(epoch 2\): loss=nan"):
        step(callback, model, optimizer, model(torch.ones(4, 3)).sum(), 12)


def test_a_checkpoint_is_refused_while_a_bad_step_is_queued():
    model, optimizer = adam_after_one_step()
    callback = NonFinite("stop", every_n_steps=50)
    trainer = step(callback, model, optimizer, model(torch.ones(4, 3)).sum() * float("inf"), 3)
    with pytest.raises(NonFiniteError, match=r"at step 3 .*loss=-?inf"):
        callback.on_save_checkpoint(trainer, model, {})
    callback.on_save_checkpoint(trainer, model, {})  # read: nothing queued is left


def metrics(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_a_nan_loss_stops_the_run_keeping_the_last_good_checkpoint(train):
    result = train("dataset=digits", NAN_AT, "+loss.steps=[4]", *BUDGET, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "non-finite training step at step 4 (epoch 1): loss=nan" in result.stderr
    assert "NaNAt" in result.stderr
    status = json.loads((train.dir / "status.json").read_text())
    assert status["status"] == "failed" and "step 4" in status["error"]
    assert yaml.safe_load((train.dir / "csv" / "hparams.yaml").read_text())["status"] == "failed"
    last = torch.load(train.dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_checked_every_n_steps_a_run_still_keeps_only_good_checkpoints(train):
    # the NaN at step 4 is read at the end of epoch 1 (steps 3-5), before its checkpoint is written
    result = train("dataset=digits", NAN_AT, "+loss.steps=[4]", "callbacks.nonfinite.every_n_steps=50", *BUDGET,
                   check=False)
    assert result.returncode == 1
    assert "non-finite training step at step 4 (epoch 1): loss=nan" in result.stderr
    last = torch.load(train.dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_skip_counts_skipped_steps_and_the_run_finishes(train):
    train("dataset=digits", NAN_AT, "+loss.steps=[1,4]", "nonfinite=skip", *BUDGET)
    rows = metrics(train.dir)
    skipped = [float(r["train/skipped_steps"]) for r in rows if r.get("train/skipped_steps")]
    assert skipped[-1] == 2 and skipped[0] == 0
    assert all(math.isfinite(float(r["val/elbo"])) for r in rows if r.get("val/elbo"))
    recorded = json.loads((train.dir / "status.json").read_text())
    assert recorded["status"] == "done" and recorded["error"] is None and recorded["result"] < 0


def test_a_full_disk_is_a_message_not_a_traceback(train):
    train.dir.joinpath("config.yaml").symlink_to("/dev/full")  # writes to /dev/full fail with ENOSPC
    result = train("dataset=digits", *BUDGET, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"vaelab: No space left on device: while writing the run in {train.dir}" in result.stderr
    assert json.loads((train.dir / "status.json").read_text())["status"] == "failed"


def test_in_a_sweep_a_failing_job_leaves_the_others_running(train):
    sweep = train.dir / "sweep"
    result = train("hydra.mode=MULTIRUN", "dataset=digits", NAN_AT, "+loss.steps=[0],[]", *BUDGET[1:], "trainer.max_epochs=1",
                   f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}", check=False)
    assert result.returncode == 0, result.stderr[-2000:]  # the failure is logged and recorded; the sweep goes on
    assert json.loads((sweep / "0" / "status.json").read_text())["status"] == "failed"
    assert json.loads((sweep / "1" / "status.json").read_text())["status"] == "done"


@pytest.mark.parametrize("precision,step,saved,named", [
    ("16-true", 7, "", ["trainer.precision=16-true is likely", "No checkpoint was written"]),
    ("bf16-mixed", 0, "/run/checkpoints/last.ckpt", ["trainer.precision=bf16-mixed", "/run/checkpoints/last.ckpt holds"]),
    ("32-true", 0, "", ["the first step failed", "the data", "No checkpoint was written"]),
    ("32-true", 7, "/run/checkpoints/best.ckpt", ["lr=0.5 is likely too large", "/run/checkpoints/best.ckpt holds"]),
])
def test_non_finite_advice_names_the_likely_cause_and_only_a_checkpoint_that_exists(precision, step, saved, named):
    from vaelab.callbacks.nonfinite import advice

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    checkpoint = SimpleNamespace(last_model_path="", best_model_path=saved)
    text = advice(SimpleNamespace(precision=precision, optimizers=[optimizer], checkpoint_callbacks=[checkpoint]), step)
    assert all(n in text for n in named), text
    assert saved or ".ckpt" not in text, text
