"""`python -m vaelab.evaluate` refuses bad input in one line on stderr with exit status 2: a checkpoint of another
architecture than the run's config builds, a file that is no checkpoint, a config file in place of a run folder,
and bad flags. `main` returns the status; only the module's `__main__` guard exits with it."""

import json
import pickle
import shutil
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from tests.runs.test_checkpoints import ROOT
from vaelab.build import build
from vaelab.evaluate import main
from vaelab.paths import CONF
from vaelab.resolvers import register_resolvers

TINY = ["dataset=digits", "loss=elbo", "latent.D=2", "nll_samples=2", "nll_chunk=2"]
FAST = ["--samples", "2", "--chunk", "2", "--limit-test-batches", "1", "--accelerator", "cpu"]


def made_run(run_dir, *overrides):
    """A run folder as train.py leaves one, untrained: config.yaml composed and resolved as train.py saves it, the
    group choices in .hydra/hydra.yaml, and the weights that the config builds in checkpoints/best.ckpt."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *overrides, f"hydra.runtime.output_dir={run_dir}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    choices = dict(cfg.hydra.runtime.choices)
    values = OmegaConf.to_container(cfg, resolve=True)
    del values["hydra"]
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(values))
    (run_dir / ".hydra" / "hydra.yaml").write_text(OmegaConf.to_yaml({"hydra": {"runtime": {"choices": choices}}}))
    module, _ = build(OmegaConf.create(values), choices)
    torch.save({"epoch": 0, "global_step": 1, "state_dict": module.state_dict()}, run_dir / "checkpoints" / "best.ckpt")
    return run_dir


@pytest.fixture
def runs(tmp_path):
    return made_run(tmp_path / "h32", "net.hidden=[32]"), made_run(tmp_path / "h64", "net.hidden=[64]")


def refusal(capsys, *argv) -> str:
    """The one line `main(argv)` prints on stderr, with exit status 2."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vaelab: "), err
    return err[0]


def test_a_run_is_evaluated_and_a_checkpoint_of_another_architecture_is_refused(runs, capsys):
    h32, h64 = runs
    capsys.readouterr()
    assert main([str(h64), *FAST]) == 0
    assert "test/elbo" in json.loads(capsys.readouterr().out)
    shutil.copyfile(h32 / "checkpoints" / "best.ckpt", h64 / "checkpoints" / "best.ckpt")
    line = refusal(capsys, str(h64), *FAST)
    assert line.startswith(f"vaelab: run='{h64}' is not accepted: its checkpoint is of another architecture than the run's "
                           "config.yaml builds (size mismatch for "), line


NOT_CHECKPOINTS = {
    "empty": (b"", "it cannot be read, truncated or corrupted (EOFError)"),
    "text": (b"hello: world\n", "it is not a checkpoint ("),
    "random bytes": (bytes(range(256)) * 4, "it is not a checkpoint (Unsupported operand 0)"),
    "a plain pickle": (pickle.dumps({"state_dict": [1, 2]}, protocol=4), "it is not a checkpoint (Unsupported operand 149)"),
}


@pytest.mark.parametrize("case", NOT_CHECKPOINTS)
def test_a_file_that_is_no_checkpoint_is_refused_and_not_called_hostile(runs, capsys, case):
    content, problem = NOT_CHECKPOINTS[case]
    checkpoint = runs[0] / "checkpoints" / "best.ckpt"
    checkpoint.write_bytes(content)
    line = refusal(capsys, str(checkpoint))
    assert line.startswith(f"vaelab: run='{checkpoint}' is not accepted: {problem}"), line
    assert "run code" not in line


def test_a_config_file_in_place_of_the_run_folder_is_refused(runs, capsys):
    config = runs[0] / "config.yaml"
    assert refusal(capsys, str(config)) == (f"vaelab: run='{config}' is not accepted: that is a config file; give the run "
                                            f"directory that holds it ({runs[0]}) or one of its checkpoints")


USAGE = ("usage: python -m vaelab.evaluate [-h] [--samples SAMPLES] [--chunk CHUNK] [--limit-test-batches "
         "LIMIT_TEST_BATCHES] [--accelerator ACCELERATOR] [--trust-target TARGET] run")
FLAGS = [
    (["--samples", "many"], "argument --samples: 'many' is not accepted: a positive integer"),
    (["--chunk", "0"], "argument --chunk: '0' is not accepted: a positive integer"),
    (["--limit-test-batches", "1.5"], "argument --limit-test-batches: '1.5' is not accepted: a positive number of batches, "
                                      "or a fraction in (0, 1] with a decimal point"),
    (["--samp1es", "5"], "unrecognized arguments: --samp1es 5"),
    (["--samples"], "argument --samples: expected one argument"),
]


@pytest.mark.parametrize("flags,message", FLAGS, ids=[" ".join(f) for f, _ in FLAGS])
def test_a_bad_flag_is_refused_in_one_line_naming_it(tmp_path, capsys, flags, message):
    assert refusal(capsys, str(tmp_path), *flags) == f"vaelab: {message}; {USAGE}"


def test_a_missing_run_and_an_accelerator_lightning_refuses_are_refused_in_one_line(runs, capsys):
    assert refusal(capsys) == f"vaelab: the following arguments are required: run; {USAGE}"
    line = refusal(capsys, str(runs[0] / "nothing"), "--accelerator", "abacus")   # the flag first, before the run is read
    assert line.startswith("vaelab: --accelerator='abacus' is not accepted: Lightning refuses it: ValueError: You selected "
                           "an invalid accelerator name"), line


def test_the_command_exits_with_the_status_main_returns(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vaelab.evaluate", str(tmp_path), "--samples", "many"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"vaelab: {FLAGS[0][1]}; {USAGE}"], result.stderr
