"""What a run says as it goes, piped to a file as under SLURM: its folder, the config, one line per epoch, in
the console and in the run's Hydra log; labelled per job in a sweep; and what `--help` shows."""

import csv
import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from vaelab.callbacks.log_interval import batches_per_epoch
from vaelab.paths import CONF

SHORT = ["dataset=digits", "trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "nll_samples=0"]
EPOCH_LINE = r"epoch {epoch}/2  step {step}  train/elbo -[\d.]+  val/elbo -[\d.]+  [\d.]+ s"


def test_a_piped_run_prints_its_folder_config_and_a_line_per_epoch_also_in_train_log(train):
    result = train(*SHORT)
    log_file = (train.dir / "train.log").read_text()
    for text in (result.stdout, log_file):
        assert f"run folder: {train.dir}" in text
        assert re.search(EPOCH_LINE.format(epoch=1, step=3), text), text
        assert re.search(EPOCH_LINE.format(epoch=2, step=6), text), text
    assert "├── trainer" in result.stdout and "log_every_n_steps: null" in result.stdout  # the config tree
    assert "smaller than the logging interval" not in result.stderr  # the interval fits the 3-batch epoch
    with open(train.dir / "csv" / "metrics.csv") as f:
        (collapsed,) = [float(row["test/collapsed"]) for row in csv.DictReader(f) if row.get("test/collapsed")]
    assert (json.loads((train.dir / "status.json").read_text())["collapse"] is None) == (collapsed == 0.0)


def test_a_collapsed_run_says_so_with_the_likely_cause_and_records_it(train):
    # the variance loss with a discrete latent collapses within an epoch on digits (KL 0.005 nats, entropy ln 10)
    result = train("loss=variance", "latent=discrete", *SHORT, "trainer.limit_train_batches=11", "trainer.max_epochs=1")
    assert re.search(r"epoch 1/1 .* posterior collapse: KL\(q\|\|p\) [\d.e-]+ nats per datum", result.stdout)
    (line,) = [line for line in result.stdout.splitlines() if "WARNING" in line and "posterior collapse" in line]
    assert "the variance loss trains the decoder through Var f" in line and "loss.decoder=elbo (VarGrad)" in line
    assert "docs/estimators.md#posterior-collapse" in line
    assert "nats per datum" in json.loads((train.dir / "status.json").read_text())["collapse"]
    with open(train.dir / "csv" / "metrics.csv") as f:
        assert [row["test/collapsed"] for row in csv.DictReader(f) if row.get("test/collapsed")] == ["1.0"]


def test_sweep_jobs_label_their_lines_and_print_config_can_be_turned_off(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "-m", *SHORT, "trainer.max_epochs=1", "seed=0,1",
               "extras.print_config=false", f"hydra.sweep.dir={tmp_path}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in (0, 1):
        line = re.compile(rf"\[job {job}: [^]]*seed={job}[^]]*\] epoch 1/1  step 3  train/elbo")
        assert line.search(result.stdout), result.stdout
        (folder,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith(f"{job}_")]
        assert line.search((folder / "train.log").read_text())
    assert "├── trainer" not in result.stdout


@pytest.mark.parametrize("batches,limit,expected", [(11, None, 11), (430, None, 430), (11, 3, 3), (11, 20, 11),
                                                    (100, 0.25, 25), (11, 1.0, 11)])
def test_batches_per_epoch_follows_the_trainer_limit(batches, limit, expected):
    assert batches_per_epoch(batches, limit) == expected


def test_help_shows_examples_and_points_to_the_docs():
    shown = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"], capture_output=True, text=True, timeout=120).stdout
    assert "python train.py loss=vargrad latent=discrete S=8" in shown
    losses = ", ".join(sorted(path.stem for path in (CONF / "loss").glob("*.yaml")))
    assert "docs/configuration.md" in shown and f"loss: {losses}" in shown
