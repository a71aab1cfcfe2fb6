"""An installed vaelab (pip install ., not editable) carries its configs and trains by `python -m vaelab ARGS`
from any directory, as `python train.py ARGS` does in a checkout."""

import glob
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from vaelab.paths import CONF


def test_every_config_file_is_package_data():
    """Each file under vaelab/conf/ matches one of pyproject's package-data globs, so pip installs it."""
    tomllib = pytest.importorskip("tomllib")   # Python 3.11 on
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vaelab"]
    vaelab = ROOT / "vaelab"
    files = {str(p.relative_to(vaelab)) for p in CONF.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert CONF == vaelab / "conf" and "conf/train.yaml" in files
    missing = files - {path for g in globs for path in glob.glob(g, root_dir=vaelab, recursive=True)}
    assert not missing


@pytest.mark.slow
def test_an_installed_vaelab_trains_from_another_directory(tmp_path):
    target, elsewhere = tmp_path / "pkg", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(ROOT)], check=True)
    assert (target / "vaelab" / "conf" / "sweep" / "benchmark.md").is_file()
    env = {**os.environ, "PYTHONPATH": str(target), "WANDB_MODE": "offline"}
    done = subprocess.run([sys.executable, "-m", "vaelab", "loss=vargrad", "latent=binary", "dataset=digits",
                           "trainer.max_steps=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                           "nll_samples=5", "extras.print_config=false"], cwd=elsewhere, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    [run] = list((elsewhere / "outputs").glob("*/*"))
    assert (run / "status.json").is_file() and (run / "train.log").is_file()
