import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)  # tiny models: thread start-up dominates, and the CPUs are shared


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    """Skip `slow` tests unless --runslow, and `requires_data` tests when VAELAB_DATA_DIR is not set."""
    slow = pytest.mark.skip(reason="slow: give --runslow to run")
    no_data = pytest.mark.skip(reason="needs the real data sets: set VAELAB_DATA_DIR")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(slow)
        if "requires_data" in item.keywords and not os.environ.get("VAELAB_DATA_DIR"):
            item.add_marker(no_data)


@pytest.fixture
def train(tmp_path):
    """Run train.py in a subprocess with the given overrides, output in a fresh folder; real MNIST
    when VAELAB_DATA_DIR is set, scikit-learn's digits otherwise (unless the overrides name a dataset).
    `train.command(*overrides)` is the command line, for tests that signal the process."""

    def command(*overrides):
        chosen = os.environ.get("VAELAB_DATA_DIR") or any(o.startswith("dataset=") for o in overrides)
        dataset = [] if chosen else ["dataset=digits"]
        return [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={tmp_path}", *dataset, *overrides]

    def run(*overrides, check=True):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # small runs: one thread spares thread start-up and contention
        result = subprocess.run(command(*overrides), capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)
        if check:
            assert result.returncode == 0, result.stderr[-3000:]
        return result

    run.dir, run.command = tmp_path, command
    return run
