"""Bad input stops train.py before any work: exit code 2, one line naming the key, the value and what is
accepted, and no run folder left behind. Each case's line is quoted in docs/reliability.md (Refusals), and the
last test checks that every quote there is one of these lines."""

import logging
import os
import re
import runpy
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from vaelab.paths import CONF

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
TRAIN = Path(__file__).resolve().parents[2] / "train.py"
NOWHERE = "/nonexistent/vaelab-data"
ESTIMATORS = (f"one of {', '.join(sorted(path.stem for path in (CONF / 'loss').glob('*.yaml')))}; "
              "did you mean loss=variance or loss=reinforce?")
# (overrides, the line train.py prints after "vaelab: "), run on dataset=digits unless a case names a data set,
# with VAELAB_DATA_DIR unset
REFUSED = [
    (["loss=varience"], f"loss='varience' is not accepted: {ESTIMATORS}"),
    (["hydra.mode=MULTIRUN", "loss=elbo,varience"], f"loss='varience' is not accepted: {ESTIMATORS}"),
    (["latent=continous"], "latent='continous' is not accepted: one of binary, binary2_linear, binary2_nonlinear, "
                           "continuous, discrete; did you mean latent=continuous?"),
    (["S=abc"], "S='abc' is not accepted: an integer"),
    (["S=1.5"], "S=1.5 is not accepted: an integer"),
    (["lr=abc"], "lr='abc' is not accepted: a number"),
    (["seed=abc"], "seed='abc' is not accepted: an integer"),
    (["eval_samples=1.5"], "eval_samples=1.5 is not accepted: an integer"),
    (["+foo=1"], "foo=1 is not accepted: a key that vaelab reads; one of seed, S, lr, eval_samples, nll_samples, nll_chunk, "
                 "compile, data_dir, skip_finished, nonfinite, resume, tags, trusted_targets, dataset, likelihood, latent, "
                 "loss, net, optimizer, prior_optimizer, scheduler, trainer, logger, callbacks, paths, extras"),
    (["lr=0"], "lr=0 is not accepted: a positive learning rate"),
    (["++optimizer.lr=-1"], "optimizer.lr=-1 is not accepted: torch.optim.Adam refuses it: Invalid learning rate: -1"),
    (["scheduler=multistep", "~scheduler.milestones"], "scheduler={'_target_': 'torch.optim.lr_scheduler.MultiStepLR', "
     "'gamma': 0.1} is not accepted: torch.optim.lr_scheduler.MultiStepLR refuses it: MultiStepLR.__init__() missing 1 "
     "required positional argument: 'milestones'"),
    (["+prior_optimizer._target_=torch.optim.SGD", "+prior_optimizer._partial_=true", "+prior_optimizer.lr=-2"],
     "prior_optimizer.lr=-2 is not accepted: torch.optim.SGD refuses it: Invalid learning rate: -2"),
    (["dataset.batch_size=0"], "dataset.batch_size=0 is not accepted: a positive integer"),
    (["dataset.batch_size=1.5"], "dataset.batch_size=1.5 is not accepted: an integer"),
    (["dataset.val_size=0"], "dataset.val_size=0 is not accepted: a positive integer"),
    (["dataset.val_size=60000"], "dataset.val_size=60000 is not accepted: between 1 and 1496 (1797 images, test_size=300, "
                                 "at least one left for training)"),
    (["dataset=mnist", "dataset.val_size=60000"], "dataset.val_size=60000 is not accepted: between 1 and 59999 (60000 training "
                                                  "images, at least one left for training)"),
    (["+dataset.foo=1"], "dataset.foo=1 is not accepted: a key that vaelab.data.Digits reads (root, batch_size, binarize, "
                         "val_size, test_size, seed)"),
    (["+loss.dreg=true"], "loss.dreg=True is not accepted: a key that vaelab.objectives.ELBO reads (analytic_kl)"),
    (["loss._target_=vaelab.objectives.Elbo"], "loss._target_='vaelab.objectives.Elbo' is not accepted: an importable class "
                                                "or function"),
    (["net.hidden=[0]"], "net.hidden=[0] is not accepted: a list of positive layer widths"),
    (["latent.D=0"], "latent.D=0 is not accepted: a positive latent size"),
    (["loss=vargrad", "latent=discrete", "latent.K=1"], "latent.K=1 is not accepted: at least 2 classes per variable"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not accepted: a positive integer, or -1 for no limit"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0 is not accepted: a positive integer, or null for min(50, "
                                      "training batches per epoch)"),
    (["trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 is not accepted: a positive number of batches, a "
                                        "fraction in (0, 1] of them, or null for all"),
    (["+trainer.max_epoch=5"], "trainer.max_epoch=5 is not accepted: a key that lightning.pytorch.Trainer reads; did you mean "
                               "trainer.max_epochs?"),
    (["trainer.devices=0"], "trainer.devices=0 is not accepted: lightning.pytorch.Trainer refuses it: `Trainer(devices=0)` "
                            "value is not a valid input using cpu accelerator."),
    (["trainer.accelerator=gpu"], "trainer.accelerator='gpu' is not accepted: lightning.pytorch.Trainer refuses it: No "
                                  "supported gpu backend found!"),
    (["trainer.strategy=ddp_spawn", "trainer.devices=2", "trainer.accelerator=cpu"],
     "trainer.strategy='ddp_spawn' is not accepted: auto, ddp, or another strategy that starts each process as a script "
     "(Lightning's ddp launches train.py once a device; ddp_spawn, ddp_fork and ddp_notebook cannot test and record the run)"),
    (["trainer.precision=16-true"], "trainer.precision='16-true' is not accepted: one of 32-true, 64-true, 16-mixed, "
                                    "bf16-mixed, bf16-true (or 16, bf16, 32, 64), or null for 32-true; float16 weights "
                                    "overflow, 16-mixed keeps them in float32"),
    (["nonfinite=maybe"], "nonfinite='maybe' is not accepted: one of stop, skip"),
    (["callbacks.nonfinite.every_n_steps=0"], "callbacks.nonfinite.every_n_steps=0 is not accepted: null (every step on the CPU, "
                                               "every log_every_n_steps on an accelerator) or a positive integer"),
    (["callbacks.checkpoint.mode=maxx"], "callbacks.checkpoint.mode='maxx' is not accepted: "
     "lightning.pytorch.callbacks.ModelCheckpoint refuses it: `mode` can be min, max but got maxx"),
    (["compile=yes"], "compile='yes' is not accepted: true or false"),
    (["trainer.enable_progress_bar=true", "callbacks.progress_bar.metrics=train/loss"],
     "callbacks.progress_bar.metrics='train/loss' is not accepted: a list, each item a string"),
    (["dataset=mnist", f"data_dir={NOWHERE}", "dataset.download=false"],
     f"data_dir='{NOWHERE}' is not accepted: MNIST file train-images-idx3-ubyte.gz not found: searched {NOWHERE}/MNIST/raw for "
     "train-images-idx3-ubyte.gz. Set VAELAB_DATA_DIR (unset) or data_dir=... to the data root that holds it, or allow "
     "dataset.download=true on a machine with a network."),
    (["dataset=binarized_mnist", f"data_dir={NOWHERE}"],
     f"data_dir='{NOWHERE}' is not accepted: binarized MNIST not found: searched {NOWHERE}/binarized_mnist for "
     "binarized_mnist.npz or binarized_mnist_train.amat(.gz). Set VAELAB_DATA_DIR (unset) or data_dir=... to the data "
     "root that holds it."),
    (["dataset=frey_face", f"data_dir={NOWHERE}"],
     f"data_dir='{NOWHERE}' is not accepted: Frey Face not found: searched {NOWHERE}/frey_face for frey_rawface.mat. Set "
     "VAELAB_DATA_DIR (unset) or data_dir=... to the data root that holds it."),
    (["dataset=omniglot", f"data_dir={NOWHERE}"],
     f"data_dir='{NOWHERE}' is not accepted: Omniglot not found: searched {NOWHERE}/omniglot for chardata.mat. Set "
     "VAELAB_DATA_DIR (unset) or data_dir=... to the data root that holds it, or allow dataset.download=true to fetch "
     f"torchvision's Omniglot into {NOWHERE}/omniglot-py (a different split from IWAE's)."),
]


def assert_refused(result, run_dir: Path, line: str | None = None, named=()):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    if line is not None:
        assert f"vaelab: {line}" in result.stderr.splitlines(), result.stderr[-2000:]
    for text in named:
        assert text in result.stderr, (text, result.stderr)
    assert not run_dir.exists() or not any(run_dir.iterdir()), list(run_dir.iterdir())


@pytest.fixture
def train_here(tmp_path, monkeypatch, capfd):
    """train.py run as `__main__` in this process, in a fresh folder on dataset=digits unless the overrides name a
    data set: the same checks in the same order as `python train.py`, without a process start-up per case."""

    def run(*overrides):
        dataset = [] if any(o.startswith("dataset=") for o in overrides) else ["dataset=digits"]
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [str(TRAIN), f"hydra.run.dir={tmp_path}", *dataset, *overrides])
        capfd.readouterr()
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            runpy.run_path(str(TRAIN), run_name="__main__")
            code = 0
        except SystemExit as e:
            code = e.code
        finally:
            GlobalHydra.instance().clear()
            for handler in set(root.handlers) - set(handlers):   # Hydra's, on this test's captured streams: a later
                handler.close()                                 # test's log must not write to them once closed
            root.handlers, root.level = handlers, level
        return SimpleNamespace(returncode=code, stderr=capfd.readouterr().err)

    run.dir = tmp_path
    return run


@pytest.mark.parametrize("overrides,line", REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_bad_values_are_refused_before_any_work(train_here, monkeypatch, overrides, line):
    if "trainer.accelerator=gpu" in overrides and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("VAELAB_DATA_DIR", raising=False)
    assert_refused(train_here(*overrides), train_here.dir, line)
    assert not (train_here.dir / "multirun").exists()


@pytest.mark.parametrize("overrides", [["loss=varience"], ["S=abc"], ["trainer.devices=0"], ["latent.D=0"]],
                         ids=["a choice", "a type", "Lightning's", "a constructor's"])
def test_a_refusal_ends_the_process_with_its_one_line(train, monkeypatch, overrides):
    """One case of each stage of checks in a process of its own: exit status 2, the same line, no folder."""
    monkeypatch.delenv("VAELAB_DATA_DIR", raising=False)
    [line] = [line for o, line in REFUSED if o == overrides]
    assert_refused(train(*overrides, check=False), train.dir, line)


def quoted_refusals() -> list[tuple[str, str]]:
    """(overrides, line) of each row of the table under docs/reliability.md's `## Refusals` heading."""
    section = DOCS.read_text().split("\n## Refusals\n", 1)[1].split("\n## ", 1)[0]
    return [(m[1], m[2]) for m in re.finditer(r"^\| `(.+?)` \| `` vaelab: (.+?) `` \|$", section, re.MULTILINE)]


def test_the_docs_quote_each_refusal_as_train_py_prints_it():
    assert sorted(quoted_refusals()) == sorted((" ".join(o), line) for o, line in REFUSED)


def test_a_missing_data_root_is_refused_naming_the_folder_and_the_variable(train, tmp_path_factory):
    missing = tmp_path_factory.mktemp("data") / "nowhere"
    result = train("dataset=mnist", f"data_dir={missing}", "dataset.download=false", check=False)
    assert_refused(result, train.dir, named=[f"data_dir='{missing}'", "not found", "VAELAB_DATA_DIR"])


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
    assert_refused(result, train.dir, named=["train-images-idx3-ubyte.gz is corrupted or truncated", "md5"])
