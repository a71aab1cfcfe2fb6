"""Bad input stops train.py before any work: exit code 2, one line naming the key, the value and
what is accepted, and no run folder left behind."""

import os
import shutil
from pathlib import Path

import pytest

REFUSED = [
    (["loss=varience"], ["loss='varience'",
                         "one of arm, disarm, elbo, gumbel, gumbel_st, iwae, iwae_dreg, reinforce, vargrad, variance, vimco",
                         "did you mean loss=variance"]),
    (["hydra.mode=MULTIRUN", "loss=elbo,varience"], ["loss='varience'", "did you mean loss=variance"]),
    (["latent=continous"], ["latent='continous'", "did you mean latent=continuous"]),
    (["lr=0"], ["lr=0", "a positive learning rate"]),
    (["dataset.batch_size=0"], ["dataset.batch_size=0", "a positive integer"]),
    (["trainer.max_epochs=0"], ["trainer.max_epochs=0", "a positive integer, or -1"]),
    (["trainer.log_every_n_steps=0"], ["trainer.log_every_n_steps=0", "a positive integer"]),
    (["latent.D=0"], ["latent.D=0", "a positive latent size"]),
    (["loss=vargrad", "latent=discrete", "latent.K=1"], ["latent.K=1", "at least 2 classes"]),
    (["nonfinite=maybe"], ["nonfinite='maybe'", "one of stop, skip"]),
    (["callbacks.nonfinite.every_n_steps=0"], ["callbacks.nonfinite.every_n_steps=0", "a positive integer"]),
    (["compile=yes"], ["compile='yes'", "true or false"]),
    (["trainer.enable_progress_bar=true", "callbacks.progress_bar.metrics=train/loss"],
     ["callbacks.progress_bar.metrics='train/loss'", "a list of logged metric names"]),
]


def assert_refused(result, named, run_dir: Path):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    for text in named:
        assert text in result.stderr, (text, result.stderr)
    assert not run_dir.exists() or not any(run_dir.iterdir()), list(run_dir.iterdir())


@pytest.mark.parametrize("overrides,named", REFUSED)
def test_bad_values_are_refused_before_any_work(train, overrides, named):
    result = train(*overrides, check=False)
    assert_refused(result, named, train.dir)
    assert not (train.dir / "multirun").exists()


def test_a_missing_data_root_is_refused_naming_the_folder_and_the_variable(train, tmp_path_factory):
    missing = tmp_path_factory.mktemp("data") / "nowhere"
    result = train("dataset=mnist", f"data_dir={missing}", "dataset.download=false", check=False)
    assert_refused(result, [f"data_dir='{missing}'", "not found", "VAELAB_DATA_DIR"], train.dir)


@pytest.mark.requires_data
def test_a_truncated_data_file_is_refused_by_its_checksum(train, tmp_path_factory):
    real = Path(os.environ["VAELAB_DATA_DIR"]) / "MNIST" / "raw"
    raw = tmp_path_factory.mktemp("data") / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in real.glob("*.gz"):
        (raw / f.name).symlink_to(f)
    shutil.copyfile(real / "train-images-idx3-ubyte.gz", raw / "copy")
    (raw / "train-images-idx3-ubyte.gz").unlink()
    (raw / "train-images-idx3-ubyte.gz").write_bytes((raw / "copy").read_bytes()[:100_000])
    result = train("dataset=mnist", f"data_dir={raw.parents[1]}", "dataset.download=false", check=False)
    assert_refused(result, ["train-images-idx3-ubyte.gz is corrupted or truncated", "md5"], train.dir)
