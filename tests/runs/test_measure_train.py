"""train.py end to end with a 2-D continuous latent: figures, test/nll, diagnostics; then the evaluate and plots commands."""

import json
import math
import subprocess
import sys

import pandas as pd
from PIL import Image

from tests.conftest import ROOT

BUDGET = ["latent.D=2", "trainer.max_epochs=2", "trainer.limit_train_batches=6", "trainer.limit_val_batches=2",
          "trainer.limit_test_batches=2", "trainer.log_every_n_steps=3", "nll_samples=200", "callbacks.figures.every_n_epochs=1",
          "callbacks=[default,diagnostics]", "callbacks.diagnostics.every_n_steps=4", "callbacks.diagnostics.draws=4"]


def command(*args):
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_run_measures_and_draws_and_the_commands_redo_it(train):
    train("loss=elbo", *BUDGET)
    metrics = pd.read_csv(train.dir / "csv" / "metrics.csv")
    nll = metrics["test/nll"].dropna().item()
    assert 0 < nll < -metrics["val/elbo"].dropna().iloc[0] + 50 and math.isfinite(nll)
    for key in ("test/elbo", "test/kl", "test/recon", "test/active_units", "val/kl", "cost/sec_per_step",
                "cost/examples_per_sec", "grad/encoder/variance", "grad/decoder/snr", "grad/encoder/running_variance"):
        assert metrics[key].notna().any(), key
    figures = train.dir / "figures"
    for name in ("manifold", "manifold_epoch001", "reconstructions", "prior_samples", "learning_curves"):
        assert (figures / f"{name}.png").exists(), name
    manifold = Image.open(figures / "manifold.png")
    assert manifold.info["dpi"][0] >= 150 and (figures / "manifold.pdf").exists()
    assert manifold.width >= 20 * 28 * 2  # 20 digits across, each drawn at least twice its 28 pixels

    out = command("vaelab.evaluate", str(train.dir), "--samples", "200", "--limit-test-batches", "2",
                  "--accelerator", "cpu")
    assert math.isclose(json.loads(out[out.index("{"):])["test/nll"], nll, rel_tol=1e-5)  # same checkpoint, seeds, k
    picture = train.dir / "side_by_side.png"
    command("vaelab.reporting.plots", str(train.dir), str(train.dir / "checkpoints" / "last.ckpt"), "--out", str(picture))
    assert Image.open(picture).size == (1400, 780)  # two 3.5 x 3.9 in panels at 200 dpi: both columns of a page
