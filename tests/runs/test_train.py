"""train.py end to end: every valid latent x loss pair trains; every invalid one is refused up front."""

import csv
import math

import pytest

from vaelab.build import estimators
from vaelab.objectives.base import LATENT_KINDS

VALID = [(loss, latent) for loss, (objective, S) in sorted(estimators().items()) for latent in LATENT_KINDS
         if not objective.problems(latent, S)]  # what each loss config declares it trains at its default S
# One pair per latent kind end to end by default; every pair takes a step in tests/reporting/test_page.py, and its
# gradient is checked by enumeration in tests/objectives/. The rest train here with --runslow.
EVERY_KIND = {("elbo", "continuous"), ("vargrad", "discrete"), ("disarm", "binary")}
BUDGET = ["trainer.max_epochs=3", "trainer.limit_train_batches=20", "trainer.limit_val_batches=2",
          "trainer.limit_test_batches=2", "trainer.log_every_n_steps=5", "nll_samples=100"]


@pytest.fixture(scope="module")
def found():
    return estimators()


def metrics(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def column(rows, key):
    return [float(r[key]) for r in rows if r.get(key)]


@pytest.mark.parametrize("loss,latent", [pair if pair in EVERY_KIND else pytest.param(*pair, marks=pytest.mark.slow)
                                         for pair in VALID])
def test_every_valid_pair_trains_and_improves(train, loss, latent):
    train(f"loss={loss}", f"latent={latent}", *BUDGET)
    rows = metrics(train.dir)
    val = column(rows, "val/elbo")
    assert len(val) == 3
    for key in ("train/loss", "train/elbo", "val/elbo", "test/elbo"):
        assert column(rows, key) and all(math.isfinite(v) for v in column(rows, key)), key
    assert val[-1] > val[0]
    assert (train.dir / "checkpoints" / "last.ckpt").exists()
    assert (train.dir / "checkpoints" / "best.ckpt").exists()
    assert "_target_" in (train.dir / "config.yaml").read_text()


@pytest.mark.parametrize("overrides,named", [
    (["loss=elbo", "latent=discrete"], ["loss=elbo", "latent=discrete", "reinforce", "variance", "vargrad"]),
    (["loss=reinforce", "loss.baseline=mean"], ["loss.baseline='mean'", "none, loo, ema, nvil"]),
])
def test_invalid_pairs_fail_before_training_naming_alternatives(train, overrides, named):
    result = train(*overrides, check=False)
    assert result.returncode == 2
    for text in named:
        assert text in result.stderr, (text, result.stderr)
    assert not (train.dir / "checkpoints").exists()
    assert not (train.dir / "csv").exists()


@pytest.mark.parametrize("loss,latent,S,named", [
    ("elbo", "binary", 1, ["loss=elbo", "latent=binary", "reinforce", "variance", "vargrad"]),
    ("variance", "continuous", 1, ["S=1", "least S, 2", "elbo"]),
    ("vargrad", "continuous", 1, ["S=1", "least S, 2", "elbo"]),
    ("reinforce", "continuous", 1, ["S=1", "least S, 2", "elbo"]),
    ("iwae", "discrete", 1, ["loss=iwae", "latent=discrete", "vimco", "gumbel", "reinforce"]),
    ("disarm", "continuous", 8, ["loss=disarm", "latent=continuous", "elbo", "iwae"]),
    ("disarm", "discrete", 8, ["loss=disarm", "latent=discrete", "vimco", "gumbel"]),
    ("gumbel", "continuous", 1, ["loss=gumbel", "latent=continuous", "elbo", "iwae"]),
    ("vimco", "binary", 1, ["S=1", "least S, 2", "gumbel", "reinforce"]),
    ("disarm", "binary", 5, ["S=5", "even", "vimco", "gumbel"]),
])
def test_each_invalid_pair_is_refused_naming_the_estimators_that_can(found, loss, latent, S, named):
    """The check train.py runs before any work (the two cases above run it end to end), on every kind of misfit."""
    from vaelab.build import check_estimator
    from vaelab.errors import ConfigError

    with pytest.raises(ConfigError) as refusal:
        check_estimator(loss, found[loss][0], latent, S)
    for text in named:
        assert text in str(refusal.value), (text, str(refusal.value))


def test_default_sample_count_comes_from_the_loss_and_yields_to_the_command_line():
    from tests.runs.test_experiments import composed

    assert composed("loss=variance", "latent=discrete").S == 8
    assert composed("loss=variance", "latent=discrete", "S=3").S == 3
    assert composed("loss=elbo").S == 1


@pytest.mark.parametrize("overrides,keys", [
    (["loss=reinforce", "loss.baseline=nvil", "latent=discrete"], ["baseline.net.0.weight", "baseline.mean", "baseline.var"]),
    (["loss=gumbel", "latent=binary"], ["step", "temperature"]),
])
def test_objective_state_is_checkpointed(train, overrides, keys):
    import torch

    train(*overrides, "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
          "trainer.limit_test_batches=1")
    state = torch.load(train.dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(f"objective.{key}" in state for key in keys), sorted(state)
    if "step" in keys:
        assert state["objective.step"].item() == 3


@pytest.mark.slow
def test_compile_trains_compiled_nets_whose_checkpoint_an_uncompiled_model_loads(train, monkeypatch, tmp_path_factory):
    import torch

    from vaelab.finished import load_run

    cache = tmp_path_factory.mktemp("inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache))  # what torch.compile writes shows it ran
    train("dataset=digits", "compile=true", "trainer.max_epochs=1", "trainer.limit_train_batches=5",
          "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "nll_samples=10")
    assert any(path.is_file() for path in cache.rglob("*"))
    module, _, _ = load_run(train.dir)  # built uncompiled: the same parameter names
    state = torch.load(train.dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(value, state[name]) for name, value in module.state_dict().items())
    assert all(math.isfinite(float(row["val/elbo"])) for row in metrics(train.dir) if row.get("val/elbo"))


@pytest.mark.slow
def test_the_progress_bar_is_shown_when_asked_and_dropped_otherwise(train):
    # trainer.enable_progress_bar is true in a terminal; every other test here runs without one (and so without
    # the callbacks group's progress bar, which Lightning would refuse beside enable_progress_bar=false)
    short = ["dataset=digits", "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
             "trainer.limit_test_batches=1", "nll_samples=0"]
    shown = train(*short, "trainer.enable_progress_bar=true", "trainer.log_every_n_steps=2").stdout
    assert "Epoch 0" in shown and "train/loss=" in shown and "train/elbo=" in shown and "val/elbo=" in shown
    assert "Epoch 0" not in train(*short).stdout


@pytest.mark.slow
def test_training_profiles_nothing_by_default_and_profiles_when_asked(train):
    # no profiler by default (trainer.profiler=null); a named one profiles
    short = ["dataset=digits", "trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
             "trainer.limit_test_batches=1", "nll_samples=0"]
    assert "Profiler Report" in train(*short, "trainer.profiler=simple").stderr
    assert "Profiler Report" not in train(*short).stderr
