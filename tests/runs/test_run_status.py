"""Run status that tells the truth: an owner in status.json, a lock held while a process works on the run folder,
a dead owner's run reported as died, a second process refused, and every job of a sweep reported."""

import json
import os
import signal
import socket
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT
from vaelab.lifecycle import RunBusy, held, locked, status_of, write_status
from vaelab.reporting.report import write_report

HOLD = "import sys, time; from vaelab.lifecycle import held; h = held(sys.argv[1], 'resume'); h.__enter__(); " \
       "print('held', flush=True); time.sleep(600)"


def holder(run_dir):
    """Another process that holds the run folder's lock until killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout.readline().strip() == "held"
    return process


def test_status_records_its_owner(tmp_path):
    write_status(tmp_path, "running")
    owner = json.loads((tmp_path / "status.json").read_text())["owner"]
    assert (owner["host"], owner["pid"]) == (socket.gethostname(), os.getpid()) and owner["started"]


def test_a_run_whose_owner_was_killed_reads_as_died_and_a_live_one_as_running(tmp_path):
    write_status(tmp_path, "running")
    process = holder(tmp_path)
    assert locked(tmp_path) and status_of(tmp_path) == "running"
    with pytest.raises(RunBusy, match=rf"resume='{tmp_path}' is not accepted: another process works on this run folder"):
        with held(tmp_path, "resume"):
            pass
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not locked(tmp_path) and status_of(tmp_path) == "died"
    with held(tmp_path, "resume"):   # the kernel dropped the dead owner's lock
        assert locked(tmp_path)


def test_a_refused_resume_names_the_live_owner_not_the_dead_one_in_status_json(tmp_path):
    (tmp_path / "status.json").write_text(json.dumps({"status": "running", "owner": {"host": "h", "pid": 99999999}}))
    process = holder(tmp_path)   # took the folder over from the dead owner and has not written status.json yet
    try:
        with pytest.raises(RunBusy, match=rf"pid {process.pid},") as refusal:
            with held(tmp_path, "resume"):
                pass
        assert "99999999" not in str(refusal.value)
    finally:
        process.kill()
        process.wait(timeout=60)


def test_a_second_resume_of_a_live_run_is_refused_and_changes_nothing(train):
    train("dataset=digits", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
          "trainer.limit_test_batches=1", "nll_samples=0")
    metrics = (train.dir / "csv" / "metrics.csv").read_text()
    status = (train.dir / "status.json").read_text()
    process = holder(train.dir)
    try:
        result = train(f"resume={train.dir}", "trainer.max_epochs=2", "dataset=digits", check=False)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"vaelab: resume='{train.dir}' is not accepted: another process works on this run folder (host " \
        in result.stderr
    assert (train.dir / "csv" / "metrics.csv").read_text() == metrics
    assert (train.dir / "status.json").read_text() == status


def job(sweep_dir, name, overrides, status=None):
    """A job folder as Hydra and train.py leave it."""
    run_dir = sweep_dir / name
    (run_dir / ".hydra").mkdir(parents=True)
    hydra = {"hydra": {"runtime": {"choices": {"loss": "vargrad"}},
                       "job": {"config": {"override_dirname": {"exclude_keys": ["logger"]}}}}}
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"S": int(overrides[0].split("=")[1]), "seed": 0}))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if status:
        write_status(run_dir, status)


def test_the_report_lists_every_job_of_the_sweep_dead_and_never_started_ones_included(tmp_path):
    multirun = {"hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                                      "params": {"S": "2,8"}},
                          "overrides": {"task": ["S=2,4,8", "seed=0", "net.hidden=[16],[32]"]}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    job(tmp_path, "0", ["S=2", "seed=0", "net.hidden=[16]"], "running")   # its process is gone: died
    job(tmp_path, "1", ["S=2", "seed=0", "net.hidden=[32]"])              # a folder, no status yet
    runs = write_report(tmp_path).set_index("run")
    assert len(runs) == 6   # the command line's S replaces the sweep file's: 3 x 2 jobs
    assert runs.loc["0", "status"] == "died" and runs.loc["1", "status"] == "missing"
    missing = runs[runs.status == "missing"]
    assert sorted(missing.index) == ["1", "S=4,seed=0,net.hidden=[16]", "S=4,seed=0,net.hidden=[32]",
                                     "S=8,seed=0,net.hidden=[16]", "S=8,seed=0,net.hidden=[32]"]
    assert set(missing["net.hidden"]) == {"[16]", "[32]"}
    summary = (tmp_path / "summary.md").read_text()
    assert "## Runs that died" in summary and "- `0`" in summary.split("## Runs that died")[1]
    assert "## Runs that never started" in summary and "`S=8,seed=0,net.hidden=[32]`" in summary


@pytest.mark.parametrize("folder", ["empty", "absent"])
def test_report_on_a_folder_without_runs_is_a_one_line_refusal(tmp_path, folder):
    sweep_dir = tmp_path / "sweep"
    if folder == "empty":
        sweep_dir.mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "report", str(sweep_dir)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"vaelab: report='{sweep_dir}' is not accepted: a sweep's folder, holding its " \
        "multirun.yaml or run folders (with .hydra/); this holds neither"


def test_a_sweep_job_failing_before_training_leaves_a_failed_status_and_the_sweep_goes_on(tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "-m", "dataset=digits", "seed=0,1", f"hydra.sweep.dir={tmp_path}",
               "dataset._target_=tests.runs.broken.UnreadableData"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = write_report(tmp_path)
    assert runs.status.tolist() == ["failed", "failed"]
    assert all("the data disk went away" in error for error in runs.error)
    assert all(json.loads((tmp_path / r / "status.json").read_text())["owner"]["started"] for r in runs.run)
    assert pd.read_csv(tmp_path / "results.csv").status.tolist() == ["failed", "failed"]
