"""Checkpoints are read safely: a hostile one runs no code, a truncated or non-finite one is a one-line refusal,
and a metrics.csv cut short by a dying process does not block resume."""

import os
import pickle
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from tests.conftest import ROOT
from vaelab.errors import ConfigError
from vaelab.resolvers import register_resolvers
from vaelab.resume import saved_run, trim_metrics


class Exploit:
    """Unpickled, creates the file `path`: what a crafted checkpoint can do to whoever loads it unsafely."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def saved_config(run_dir) -> str:
    """config.yaml as train.py saves it for a run in `run_dir` (dataset=digits, loss=elbo): composed and resolved."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["dataset=digits", "loss=elbo", f"hydra.runtime.output_dir={run_dir}"],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    values = OmegaConf.to_container(cfg, resolve=True)
    del values["hydra"]
    return OmegaConf.to_yaml(values)


def run_folder(run_dir, checkpoint: dict, best: dict | None = None):
    """A run folder as train.py leaves it, as far as resume= and vaelab.evaluate read it before loading weights."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    (run_dir / "config.yaml").write_text(saved_config(run_dir))
    (run_dir / ".hydra" / "hydra.yaml").write_text(
        f"hydra: {{runtime: {{output_dir: {run_dir}, choices: {{dataset: digits, loss: elbo}}}}}}\n")
    torch.save(checkpoint, run_dir / "checkpoints" / "last.ckpt")
    if best is not None:
        torch.save(best, run_dir / "checkpoints" / "best.ckpt")
    return run_dir


def good():
    return {"global_step": 3, "epoch": 0, "state_dict": {"w": torch.ones(2, 2)}}


def python(*args, cwd):
    # TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns torch.load's default to the unsafe unpickler: vaelab must not follow it
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=300, env=env)


def test_a_hostile_checkpoint_is_refused_by_resume_and_evaluate_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    run_dir = run_folder(tmp_path / "run", {**good(), "payload": Exploit(marker)})
    pickle.loads(pickle.dumps(Exploit(marker)))   # the payload is live: unpickling it creates the file
    assert marker.exists()
    marker.unlink()

    resumed = python(str(ROOT / "train.py"), f"resume={run_dir}", "dataset=digits", cwd=tmp_path)
    evaluated = python("-m", "vaelab.evaluate", str(run_dir / "checkpoints" / "last.ckpt"), cwd=ROOT)
    for result, key in ((resumed, "resume"), (evaluated, "run")):
        assert result.returncode == 2, result.stderr[-2000:]
        [line] = result.stderr.strip().splitlines()[-1:]
        assert line.startswith(f"vaelab: {key}='{run_dir}") and "would run code when loaded" in line, line
        assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_truncated_checkpoint_is_refused_naming_the_file_and_best_ckpt(tmp_path):
    run_dir = run_folder(tmp_path, good(), best=good())
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(ConfigError, match=rf"resume='{last}' is not accepted: it cannot be read, truncated or corrupted"
                                          rf".*copy {run_dir / 'checkpoints' / 'best.ckpt'} over it"):
        saved_run(run_dir, [])


def test_a_checkpoint_with_non_finite_weights_is_never_loaded(tmp_path):
    poisoned = {**good(), "state_dict": {"encoder.w": torch.tensor([1.0, float("nan")]), "step": torch.tensor(3)}}
    run_dir = run_folder(tmp_path, poisoned)
    with pytest.raises(ConfigError, match=r"its weights are not finite \(encoder.w\); start the run afresh"):
        saved_run(run_dir, [])
    result = python("-m", "vaelab.evaluate", str(run_dir), cwd=ROOT)
    assert result.returncode == 2 and "its weights are not finite (encoder.w)" in result.stderr, result.stderr[-2000:]


def test_a_checkpoint_with_non_finite_optimiser_state_is_refused_on_resume_and_changes_nothing(tmp_path):
    moments = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.tensor([0.1]),
                             "exp_avg_sq": torch.tensor([float("inf")])}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}
    run_dir = run_folder(tmp_path, {**good(), "optimizer_states": [moments]})
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"its optimiser state is not finite \(0.state.0.exp_avg_sq\); start the run afresh"):
        saved_run(run_dir, [])
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_a_metrics_row_cut_short_is_dropped_on_resume(tmp_path):
    (tmp_path / "csv").mkdir()
    path = tmp_path / "csv" / "metrics.csv"
    path.write_text("train/loss,epoch,step\n1.5,0,0\n1.2,0,1\n0.9,0,2\n1.")   # the process died writing the last row
    trim_metrics(tmp_path, 2)
    assert path.read_text().splitlines() == ["train/loss,epoch,step", "1.5,0,0", "1.2,0,1"]
