"""Sweeps: multirun jobs that skip invalid combinations and survive failures, sweep.py reruns and reports,
W&B runs recorded offline, and the launcher and sweeper configs composing."""

import json
import math
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir

from tests.conftest import ROOT
from tests.wandb_records import offline_run
from vaelab.lifecycle import write_status
from vaelab.resolvers import NAME_BYTES, short_name

TINY = ["dataset=digits", "latent=discrete", "S=2", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "trainer.log_every_n_steps=1"]


def python(script, *args, cwd, env=None):
    result = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=cwd,
                            timeout=600, env={**os.environ, "WANDB_MODE": "offline", **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def recorded(job):
    return json.loads((job / "status.json").read_text())


def runs(sweep_dir):
    """Job directory -> {overrides as a dict, status}."""
    found = {}
    for job in sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()):
        overrides = dict(o.partition("=")[::2] for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        found[job] = (overrides, [recorded(job)["status"]] if (job / "status.json").exists() else [])
    return found


def test_skip_finished_is_left_out_of_run_names():
    """Run directories are named by the keys that tell runs apart, so a rerun finds the same directories."""
    with initialize_config_dir(config_dir=str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert {"skip_finished", "data_dir", "sweep"} <= set(cfg.hydra.job.config.override_dirname.exclude_keys)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One multirun logging to CSV, W&B (offline) and TensorBoard: elbo x discrete is invalid and precision=bogus
    is refused by Lightning's Trainer before work (both skipped), the rest run. Jobs that fail after they start
    are tested in test_run_status.py."""
    sweep_dir = tmp_path_factory.mktemp("grid")
    python("train.py", "-m", *TINY, "loss=elbo,vargrad", "seed=0,1", "trainer.precision=null,bogus",
           "logger=[csv,wandb,tensorboard]", f"hydra.sweep.dir={sweep_dir}", cwd=sweep_dir)
    return sweep_dir


def test_multirun_runs_every_combination_in_its_own_dir_skipping_invalid_and_surviving_failures(grid):
    found = runs(grid)
    assert len(found) == 8 and len({job.name for job in found}) == 8
    for job, (overrides, status) in found.items():
        if overrides["trainer.precision"] == "bogus":  # the trainer is checked before the estimator is built
            assert status == ["skipped"]
            assert "trainer.precision='bogus'" in recorded(job)["error"]
            assert not (job / "csv").exists()
        elif overrides["loss"] == "elbo":
            assert status == ["skipped"]
            assert "latent=discrete" in recorded(job)["error"]
            assert not (job / "csv").exists()
        else:
            assert status == ["done"]
            metrics = pd.read_csv(job / "csv" / "metrics.csv")
            assert metrics["val/elbo"].notna().sum() == 2 and metrics["test/elbo"].notna().sum() == 1
            assert yaml.safe_load((job / "config.yaml").read_text())["seed"] == int(overrides["seed"])


def test_report_has_a_row_per_run_and_the_mean_and_std_over_seeds(grid):
    python("sweep.py", "report", str(grid), cwd=grid)
    results = pd.read_csv(grid / "results.csv")
    assert len(results) == 8
    assert results.status.value_counts().to_dict() == {"skipped": 6, "done": 2}
    assert {"loss", "latent", "S", "seed", "trainer.max_epochs", "test/elbo", "val/elbo", "seconds_per_epoch"} \
        <= set(results)
    done = results[results.status == "done"].sort_values("seed")
    assert list(done.seed) == [0, 1] and (done.seconds_per_epoch > 0).all()
    finals = [pd.read_csv(grid / run / "csv" / "metrics.csv")["test/elbo"].dropna().iloc[-1] for run in done.run]
    assert done["test/elbo"].tolist() == pytest.approx(finals)
    mean, std = sum(finals) / 2, abs(finals[0] - finals[1]) / math.sqrt(2)
    summary = (grid / "summary.md").read_text()
    assert f"{mean:.4g} ± {std:.2g}" in summary
    assert "## Skipped runs" in summary and "bogus" in summary.split("## Skipped runs")[1]
    for plot in ("val_elbo_vs_step.png", "val_elbo_vs_time.png", "final_elbo_vs_S.png"):
        assert (grid / plot).stat().st_size > 0


def test_report_takes_up_any_test_and_diagnostic_metric(grid, tmp_path):
    """Metrics other branches log (test/nll, grad/...) reach results.csv and summary.md without naming them."""
    sweep_dir = tmp_path / "grid"
    shutil.copytree(grid, sweep_dir, ignore=shutil.ignore_patterns("wandb", "checkpoints", "tensorboard"))
    for job, (_, status) in runs(sweep_dir).items():
        if status == ["done"]:
            logged = pd.read_csv(job / "csv" / "metrics.csv")
            seed = yaml.safe_load((job / "config.yaml").read_text())["seed"]
            logged.assign(**{"test/nll": 50.0 + seed, "grad/encoder/variance": 4.0 * seed}).to_csv(
                job / "csv" / "metrics.csv", index=False)
    python("sweep.py", "report", str(sweep_dir), cwd=tmp_path)
    assert {"test/nll", "grad/encoder/variance"} <= set(pd.read_csv(sweep_dir / "results.csv"))
    summary = (sweep_dir / "summary.md").read_text()
    assert "50.5 ± 0.71" in summary and "2 ± 2.8" in summary


def test_sweep_rerun_skips_finished_runs_and_redoes_failed_ones(tmp_path):
    sweep = ["estimators", "--dir", str(tmp_path / "sw"), *TINY, "loss=reinforce,vargrad", "seed=0"]
    python("sweep.py", *sweep, cwd=tmp_path)
    found = {overrides["loss"]: job for job, (overrides, _) in runs(tmp_path / "sw").items()}
    assert sorted(found) == ["reinforce", "vargrad"]
    assert found["vargrad"].name == short_name("S=2,dataset=digits,latent=discrete,loss=vargrad,seed=0,"
                                               "trainer.limit_test_batches=2,trainer.limit_train_batches=3,"
                                               "trainer.limit_val_batches=2,trainer.log_every_n_steps=1,trainer.max_epochs=2")
    finished = (found["vargrad"] / "csv" / "metrics.csv").stat().st_mtime_ns
    write_status(found["reinforce"], "failed", "killed")

    python("sweep.py", *sweep, cwd=tmp_path)
    assert (found["vargrad"] / "csv" / "metrics.csv").stat().st_mtime_ns == finished
    assert recorded(found["reinforce"])["status"] == "done"
    assert pd.read_csv(tmp_path / "sw" / "results.csv").status.tolist() == ["done", "done"]


def test_run_folder_names_stay_short_distinct_and_stable():
    short = "S=2,loss=vargrad,seed=0"
    assert short_name(short) == short
    long = ",".join(f"trainer.key_{i}={i}" for i in range(40))
    names = {short_name(long), short_name(long + "1"), short_name(long.replace("=3", "=4"))}
    assert len(names) == 3 and all(len(n.encode()) <= NAME_BYTES and n.startswith("trainer.key_0=0,") for n in names)
    assert short_name(long) == short_name(long)


def test_a_sweep_with_many_overrides_gets_short_folders_and_a_report(tmp_path):
    """Every job is refused (lr=0), so no training is spent on the folder names."""
    many = [f"callbacks.{name}" for name in ("figures.every_n_epochs=7", "nonfinite.every_n_steps=3",
                                              "progress_bar.refresh_rate=3", "checkpoint.mode=max")]
    result = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "estimators", "--dir", str(tmp_path / "sw"), *TINY,
                             "latent=continuous", "loss=elbo", "seed=0,1", "nll_samples=0", "nll_chunk=10", "eval_samples=1",
                             "lr=0", *many],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert results.status.tolist() == ["skipped", "skipped"] and sorted(results.seed) == [0, 1]
    assert all(len(run.encode()) <= NAME_BYTES and "~" in run for run in results.run)


def test_sweeping_a_key_left_out_of_folder_names_is_refused(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "sweep.py"), "estimators", "--dir", str(tmp_path / "sw"), *TINY,
                             "loss=elbo", "seed=0", "logger=csv,tensorboard"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "vaelab: logger='csv,tensorboard' is not accepted: one value: logger is not part of " \
        "a run's folder name (data_dir, skip_finished, sweep, hparams_search, logger, resume, tags, extras, paths, debug " \
        "are not), so its values " \
        "would share one folder; run one sweep per value, each with its own --dir"
    assert not (tmp_path / "sw").exists()


def test_report_of_a_sweep_over_lists_logged_to_tensorboard_alone(tmp_path):
    """The run's CSV record is kept whichever dashboards are on, and a swept list is a table cell."""
    python("train.py", "-m", *TINY, "trainer.max_epochs=1", "loss=vargrad", "net.hidden=[16],[32]", "logger=tensorboard",
           f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    python("sweep.py", "report", str(tmp_path), cwd=tmp_path)
    results = pd.read_csv(tmp_path / "results.csv")
    assert results.status.tolist() == ["done", "done"] and results["net.hidden"].tolist() == ["[16]", "[32]"]
    assert results["test/elbo"].notna().all()
    assert "[16]" in (tmp_path / "summary.md").read_text()
    assert all(list((tmp_path / run / "tensorboard").glob("events.out.tfevents.*")) for run in results.run)


def test_a_sweep_rerun_continues_a_killed_job_from_its_last_checkpoint(tmp_path):
    """The job is SIGKILLed at step 4, in epoch 1 (after epoch 0's last.ckpt): its status says running, the report
    says died, and running the sweep again continues it from step 3, with each epoch's rows logged once."""
    sweep = [str(ROOT / "sweep.py"), "estimators", "--dir", str(tmp_path / "sw"), *TINY, "loss=vargrad", "seed=0",
             "+callbacks.killed._target_=tests.runs.broken.KilledAt", "+callbacks.killed.step=4"]
    first = subprocess.run([sys.executable, *sweep], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert first.returncode == 1, first.stderr[-3000:]
    [job] = runs(tmp_path / "sw")
    assert recorded(job)["status"] == "running"
    assert pd.read_csv(tmp_path / "sw" / "results.csv").status.tolist() == ["died"]
    assert "## Runs that died" in (tmp_path / "sw" / "summary.md").read_text()

    again = python(*sweep, cwd=tmp_path)
    said = again.stdout + again.stderr
    assert "left running by a process that died: continuing it from checkpoints/last.ckpt" in said
    assert "Restoring states from the checkpoint path at" in said
    assert recorded(job)["status"] == "done"
    logged = pd.read_csv(job / "csv" / "metrics.csv")
    assert logged.dropna(subset=["val/elbo"]).epoch.tolist() == [0, 1]
    assert logged.dropna(subset=["test/elbo"]).shape[0] == 1


def test_wandb_offline_records_config_group_and_metrics_one_run_per_job(grid):
    ids = set()
    for job, (overrides, status) in runs(grid).items():
        if status != ["done"]:
            continue
        [log] = (job / "wandb").glob("offline-run-*/run-*.wandb")
        run, config, history, summary = offline_run(log)
        seed = int(overrides["seed"])
        assert run.run_id == (job / "wandb_id").read_text().strip()
        assert run.run_group == str(grid) and run.job_type == "vargrad"
        assert run.display_name == f"vargrad-discrete-S2-digits-seed{seed}"
        assert {k: config[k] for k in ("loss", "latent", "dataset", "S", "seed")} == \
            {"loss": "vargrad", "latent": "discrete", "dataset": "digits", "S": 2, "seed": seed}
        assert config["config"]["loss"]["_target_"] == "vaelab.objectives.VarianceLoss"
        logged = pd.read_csv(job / "csv" / "metrics.csv")
        recorded = [h["val/elbo"] for h in history if "val/elbo" in h]
        assert recorded == pytest.approx(logged["val/elbo"].dropna().tolist())
        assert summary["test/elbo"] == pytest.approx(logged["test/elbo"].dropna().iloc[-1])
        assert list((job / "tensorboard").glob("events.out.tfevents.*"))
        ids.add(run.run_id)
    assert len(ids) == 2


def test_wandb_run_id_is_kept_in_the_run_dir_and_reused(tmp_path):
    from vaelab.loggers import ResumableWandbLogger

    first = ResumableWandbLogger(id_file=tmp_path / "wandb_id", save_dir=tmp_path, offline=True)
    again = ResumableWandbLogger(id_file=tmp_path / "wandb_id", save_dir=tmp_path, offline=True)
    other = ResumableWandbLogger(id_file=tmp_path / "other" / "wandb_id", save_dir=tmp_path, offline=True)
    assert first.version == again.version == (tmp_path / "wandb_id").read_text().strip()
    assert other.version != first.version
    assert again._wandb_init["resume"] == "allow"


def compose_hydra(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True).hydra


def test_slurm_launcher_takes_partition_gpus_and_time_limit_from_config():
    launcher = compose_hydra("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                             "hydra.launcher.gpus_per_node=2", "hydra.launcher.timeout_min=30").launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 2, 30)
    assert compose_hydra("hydra/launcher=slurm").launcher.gpus_per_node == 1


def test_slurm_jobs_are_requeued_on_timeout_and_preemption():
    """submitit signals a job signal_delay_s before its limit and requeues it (at most max_num_timeout times for
    timeouts); the requeued job continues from last.ckpt (test_a_sweep_rerun_continues_a_killed_job...)."""
    launcher = compose_hydra("hydra/launcher=slurm").launcher
    assert launcher.max_num_timeout == 3 and launcher.signal_delay_s == 120


def test_joblib_launcher_and_optuna_sweeper_compose():
    launcher = compose_hydra("hydra/launcher=joblib", "hydra.launcher.n_jobs=4").launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 4
    sweeper = compose_hydra("hparams_search=lr", "loss=vargrad").sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.params == {"lr": "tag(log, interval(1e-4, 3e-2))"} and sweeper.storage is None


@pytest.mark.parametrize("gpus,accelerator,expected", [
    (4, "auto", [[0], [1], [2], [3], [0], [1]]),
    (1, "gpu", [[0]] * 6),
    (0, "auto", [1] * 6),        # no GPU: left alone
    (4, "cpu", [1] * 6),         # asked for the CPU: left alone
])
def test_multirun_jobs_take_the_visible_gpus_in_turn(monkeypatch, gpus, accelerator, expected):
    import torch
    from omegaconf import OmegaConf

    from vaelab.run import spread_over_gpus

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    chosen = []
    for job_num in range(6):
        cfg = OmegaConf.create({"trainer": {"accelerator": accelerator, "devices": 1}})
        spread_over_gpus(cfg, job_num)
        chosen.append(OmegaConf.to_container(cfg)["trainer"]["devices"])
    assert chosen == expected


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_each_in_its_own_dir(tmp_path):
    python("train.py", "-m", *TINY, "loss=reinforce,vargrad", "seed=0,1", "hydra/launcher=joblib",
           "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    found = runs(tmp_path)
    assert len(found) == 4 and all(status == ["done"] for _, status in found.values())


@pytest.mark.slow
def test_submitit_runs_jobs_through_pickled_tasks(tmp_path):
    """The SLURM launcher's path (pickle the job, run it elsewhere), on this machine with submitit_local."""
    python("train.py", "-m", *TINY, "loss=vargrad", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
           "logger=[csv,wandb]", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    [(_, status)] = runs(tmp_path).values()
    assert status == ["done"]


@pytest.mark.parametrize("mode", [[], ["-m"]])
def test_runs_started_together_get_folders_of_their_own(tmp_path, mode):
    """Folders are named to the microsecond: two runs (or sweeps) started in the same second must not share one."""
    command = [sys.executable, str(ROOT / "train.py"), *mode, "dataset=digits", "trainer.fast_dev_run=true"]
    started = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    for process in started:
        assert process.wait(timeout=600) == 0, process.stderr.read()[-3000:]
    top = tmp_path / ("multirun" if mode else "outputs")
    assert len([p for p in top.glob("*/*") if p.is_dir()]) == 2
