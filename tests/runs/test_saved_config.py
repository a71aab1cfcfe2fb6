"""A run folder's config.yaml is untrusted input: `resume=` and `vaelab.evaluate` instantiate only the targets of
vaelab's own configs, or ones the user trusts by name, and refuse anything else before touching the folder."""

import hashlib

import pytest
import torch
import yaml

from tests.runs.test_checkpoints import good, run_folder
from vaelab import evaluate as command
from vaelab.errors import ConfigError
from vaelab.resume import saved_run
from vaelab.trust import own_targets


def evaluate(argv):
    """vaelab.evaluate's command on `argv`, its refusal raised as a ConfigError (`main` prints it and returns 2)."""
    return command.evaluate(command.parser().parse_args(argv))


def fingerprint(run_dir) -> dict:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def edited(run_dir, change):
    """`run_dir` with its config.yaml changed by `change` (a function of the config as plain values)."""
    values = yaml.safe_load((run_dir / "config.yaml").read_text())
    change(values)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(values))
    return run_dir


@pytest.fixture
def hostile(tmp_path):
    run_dir = run_folder(tmp_path, good())
    (run_dir / "status.json").write_text('{"status": "done", "result": -90.0}\n')
    return edited(run_dir, lambda v: v.update(loss={"_target_": "torch.load", "f": "x.pt", "weights_only": False}))


OTHER_VERSION = {   # a saved config from another version of vaelab, and what the refusal names
    "missing": (lambda v: v.pop("nll_chunk"), "the key nll_chunk is missing"),
    "unknown": (lambda v: v.update(temperature_decay=0.5), "temperature_decay=0.5 is not accepted: a key that vaelab reads"),
    "wrong type": (lambda v: v.update(S="many"), "S='many' is not accepted: an integer"),
    "running code": (lambda v: v["callbacks"].update(marker={"_target_": "builtins.open", "file": "MARKER", "mode": "w"}),
                     "callbacks.marker._target_='builtins.open', which is no target of vaelab's own configs"),
}


@pytest.mark.parametrize("case", OTHER_VERSION)
def test_a_foreign_or_other_version_config_is_refused_by_resume_and_evaluate_and_nothing_runs_or_changes(
        tmp_path, monkeypatch, case):
    change, named = OTHER_VERSION[case]
    monkeypatch.chdir(tmp_path)   # where a MARKER would be created
    run_dir = edited(run_folder(tmp_path / "run", good()), change)
    (run_dir / "status.json").write_text('{"status": "done", "result": -90.0}\n')
    before = fingerprint(run_dir)
    with pytest.raises(ConfigError, match=rf"resume='{run_dir}' is not accepted: .*{named}"):
        saved_run(run_dir, [])
    with pytest.raises(ConfigError, match=rf"run='{run_dir}' is not accepted: .*{named}"):
        evaluate([str(run_dir)])
    assert fingerprint(run_dir) == before and not (tmp_path / "MARKER").exists()


def test_a_moved_run_folder_reads_its_paths_where_it_now_lies(tmp_path):
    run_dir = run_folder(tmp_path / "started", good())
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    run_dir.rename(moved)
    cfg, _, step = saved_run(moved, ["trainer.max_epochs=2"])
    assert step == 3 and cfg.trainer.max_epochs == 2
    assert cfg.callbacks.last.dirpath == str(moved / "checkpoints")
    assert cfg.callbacks.interrupt.path == str(moved / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match="its checkpoint is of another architecture"):   # past every config check
        evaluate([str(moved)])


def test_vaelabs_own_targets_are_found_in_its_config_groups():
    assert {"vaelab.objectives.VarianceLoss", "torch.optim.Adam"} <= own_targets()
    assert "torch.load" not in own_targets()


def test_resume_refuses_a_foreign_target_naming_the_key_and_changes_nothing(hostile):
    before = fingerprint(hostile)
    with pytest.raises(ConfigError, match=rf"resume='{hostile}' is not accepted: its config.yaml sets "
                                          r"loss._target_='torch.load', which is no target of vaelab's own configs"):
        saved_run(hostile, [])
    assert fingerprint(hostile) == before


def test_evaluate_refuses_a_foreign_target_and_changes_nothing(hostile, monkeypatch):
    def loaded(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", loaded)
    before = fingerprint(hostile)
    with pytest.raises(ConfigError, match=r"loss._target_='torch.load'.*add --trust-target TARGET"):
        evaluate([str(hostile)])
    assert fingerprint(hostile) == before


def test_a_trusted_target_passes_the_check(hostile):
    cfg, _, _ = saved_run(hostile, ["trusted_targets=[torch.load]"])   # checked, not yet instantiated
    assert cfg.loss._target_ == "torch.load"


@pytest.mark.slow
def test_a_done_run_whose_config_lacks_a_key_is_refused_on_resume_and_keeps_its_status_and_test_row(train):
    train("dataset=digits", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
          "trainer.limit_test_batches=1", "nll_samples=0")
    config = train.dir / "config.yaml"
    config.write_text("\n".join(line for line in config.read_text().splitlines() if not line.startswith("nll_chunk:")))
    before = fingerprint(train.dir)
    result = train(f"resume={train.dir}", "trainer.max_epochs=2", check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"vaelab: resume='{train.dir}' is not accepted: its config.yaml does not fit this version of vaelab")
    after = fingerprint(train.dir)   # .lock records who last took the folder: the lock's own bookkeeping
    assert {k: v for k, v in after.items() if k != ".lock"} == {k: v for k, v in before.items() if k != ".lock"}


def test_evaluate_refuses_a_config_file_and_a_file_that_is_not_a_checkpoint_in_one_line(hostile):
    with pytest.raises(ConfigError, match=r"is not accepted: that is a config file; give the run directory"):
        evaluate([str(hostile / "config.yaml")])
    text = hostile / "checkpoints" / "notes.ckpt"
    text.write_text("hello: world\n")
    with pytest.raises(ConfigError, match=r"is not accepted: it is not a checkpoint") as refusal:
        evaluate([str(text), "--trust-target", "torch.load"])
    assert "run code" not in str(refusal.value)


def test_evaluate_refuses_bad_flags_with_exit_code_2(hostile):
    assert command.main([str(hostile), "--samples", "many"]) == 2
