"""Data sets: each config builds, declares a fitting likelihood and a shape; files are checked
(absent, truncated, altered -> a clear error naming the file or folder); the real files, when
VAELAB_DATA_DIR is set, have the published shapes, splits and statistics."""

import gzip
import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from vaelab.data import MNIST, BinarizedMNIST, FashionMNIST, FreyFace, LinearGaussian, Omniglot, omniglot
from vaelab.data.base import Batches, binarize
from vaelab.data.files import CorruptFile
from vaelab.errors import ConfigError
from vaelab.likelihoods import check_fit

CONF = Path(__file__).resolve().parents[2] / "vaelab" / "conf"
DATA = os.environ.get("VAELAB_DATA_DIR")
real = pytest.mark.requires_data
DATASETS = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))
LIKELIHOOD = {"mnist": "bernoulli", "fashion_mnist": "bernoulli", "binarized_mnist": "bernoulli",
              "omniglot": "bernoulli", "digits": "bernoulli", "frey_face": "gaussian", "linear_gaussian": "gaussian"}


def from_config(name, root, **overrides):
    cfg = OmegaConf.create({"data_dir": str(root), "dataset": OmegaConf.load(CONF / "dataset" / f"{name}.yaml")})
    cfg.dataset.update(overrides)
    return instantiate(cfg.dataset)


def copy(name, tmp_path, *files, damage=None):
    """A data root in tmp holding copies of the given real files of folder `name`, the last one damaged."""
    (tmp_path / name).mkdir(parents=True)
    for f in files:
        shutil.copy(Path(DATA) / name / f, tmp_path / name / f)
    if damage:
        damage(tmp_path / name / files[-1])
    return tmp_path


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_config_builds_and_declares_a_fitting_likelihood(name, tmp_path):
    data = from_config(name, tmp_path)
    assert data.likelihood == LIKELIHOOD[name]
    assert (CONF / "likelihood" / f"{data.likelihood}.yaml").exists()
    assert len(data.event_shape) >= 1 and all(n > 0 for n in data.event_shape)
    likelihood = instantiate(OmegaConf.load(CONF / "likelihood" / f"{data.likelihood}.yaml"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_fit(likelihood, data.likelihood, data.support, name)


def test_gray_mnist_defaults_to_the_continuous_bernoulli(tmp_path):
    assert MNIST(tmp_path, binarize="none").likelihood == "continuous_bernoulli"
    assert FashionMNIST(tmp_path, binarize="static").likelihood == "bernoulli"


@pytest.mark.parametrize("cls,key,value", [
    (FashionMNIST, "binarize", "always"), (Omniglot, "binarize", "yes"), (FreyFace, "binarize", 1),
    (FreyFace, "val_size", 0), (FreyFace, "test_size", 1965), (Omniglot, "val_size", 0),
    (LinearGaussian, "noise", 0.0), (LinearGaussian, "size", 100), (BinarizedMNIST, "batch_size", 0),
    (MNIST, "val_split", "end"), (Omniglot, "val_split", None), (MNIST, "binarize", "round"),
])
def test_bad_option_values_are_refused_naming_the_key(tmp_path, cls, key, value):
    with pytest.raises(ConfigError, match=key):
        cls(root=tmp_path, **{key: value})


@pytest.mark.parametrize("cls,named", [
    (lambda root: MNIST(root, download=False), "MNIST/raw"),
    (lambda root: FashionMNIST(root, download=False), "FashionMNIST/raw"),
    (BinarizedMNIST, "binarized_mnist"),
    (FreyFace, "frey_face"),
    (lambda root: Omniglot(root, download=False), "omniglot"),
])
def test_absent_files_name_the_folder_searched_and_the_variable(tmp_path, monkeypatch, cls, named):
    monkeypatch.setenv("VAELAB_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        cls(tmp_path).setup()
    assert str(tmp_path / named) in str(error.value) and "VAELAB_DATA_DIR" in str(error.value)


# --- the linear-Gaussian data set: exact p(x) and p(z|x)

def test_linear_gaussian_posterior_and_marginal_satisfy_bayes_rule_exactly():
    """log p(z) + log p(x|z) - log p(z|x) = log p(x) for every z: wrong p(z|x) or p(x) breaks it."""
    data = LinearGaussian(x_dim=5, z_dim=3, noise=0.3, seed=1)
    x = torch.randn(4, 5, dtype=torch.float64)
    z = torch.randn(7, 4, 3, dtype=torch.float64) * 2
    log_px = data.prior().log_prob(z) + data.conditional(z).log_prob(x) - data.posterior(x).log_prob(z)
    torch.testing.assert_close(log_px, data.log_marginal(x).expand(7, 4))


def test_linear_gaussian_draws_follow_the_stated_marginal():
    data = LinearGaussian(x_dim=4, z_dim=2, noise=0.5, size=40000, val_size=10, test_size=10, seed=2)
    data.setup()
    x = torch.cat(list(data.splits.values())).double()
    p = data.marginal()
    n = len(x)
    mean_se = p.variance.sqrt() / n**0.5
    assert torch.all((x.mean(0) - p.mean).abs() < 5 * mean_se)
    cov = p.covariance_matrix
    cov_se = ((cov.diag()[:, None] * cov.diag()[None, :] + cov**2) / n).sqrt()
    assert torch.all((torch.cov(x.T) - cov).abs() < 5 * cov_se)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [39980, 10, 10]
    assert data.support == "real" and data.event_shape == (4,)


# --- Omniglot on a small synthetic chardata.mat (the real one is not distributed with vaelab)

def synthetic_chardata(root, n_train=40, n_test=12):
    """Images with a stroke at row 3 of columns 5..9, stored as chardata.mat stores them
    (columns of 784 values in Fortran pixel order); the image index is written in pixel (27, 27)."""
    images = np.zeros((n_train + n_test, 28, 28))
    images[:, 3, 5:10] = 1.0
    images[:, 27, 27] = np.arange(n_train + n_test) / (n_train + n_test)
    columns = images.reshape(len(images), -1, order="F").T
    path = root / "omniglot" / "chardata.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"data": columns[:, :n_train], "testdata": columns[:, n_train:]})
    return path, torch.as_tensor(images, dtype=torch.float32)


def test_omniglot_reads_the_iwae_chardata_layout(tmp_path, monkeypatch):
    path, images = synthetic_chardata(tmp_path)
    monkeypatch.setattr(omniglot, "CHARDATA_MD5", hashlib.md5(path.read_bytes()).hexdigest())
    data = Omniglot(tmp_path, val_size=10, binarize="none")
    data.setup()
    train, val, test = (data.splits[s] for s in ("train", "val", "test"))
    assert train.shape == (30, 28, 28) and val.shape == (10, 28, 28) and test.shape == (12, 28, 28)
    torch.testing.assert_close(test, images[40:])
    seen = torch.cat([train, val])[:, 27, 27].sort().values
    torch.testing.assert_close(seen, images[:40, 27, 27])       # train and val partition the training set
    assert torch.all(train[:, 3, 5:10] == 1) and train[:, :, :5].sum() == 0 and train[:, 5:27].sum() == 0


def test_omniglot_refuses_a_chardata_whose_md5_is_not_the_known_one(tmp_path):
    path, _ = synthetic_chardata(tmp_path)
    with pytest.raises(CorruptFile, match=str(path)):
        Omniglot(tmp_path).setup()


def test_torchvision_omniglot_images_become_28x28_strokes():
    page = np.full((105, 105), 255, np.uint8)
    page[:, :40] = 0                                            # black ink on the left
    x = omniglot.TO_28(Image.fromarray(page))
    assert x.shape == (28, 28)
    assert torch.all(x[:, :10] == 1) and torch.all(x[:, 12:] == 0)


@pytest.mark.skipif(not DATA or not (Path(DATA or ".") / "omniglot" / "chardata.mat").exists(),
                    reason="no chardata.mat under VAELAB_DATA_DIR")
def test_real_omniglot_has_the_iwae_split():
    data = Omniglot(DATA, binarize="none")
    data.setup()
    assert [tuple(data.splits[s].shape) for s in ("train", "val", "test")] == [(23000, 28, 28), (1345, 28, 28),
                                                                                (8070, 28, 28)]
    assert all(0 <= s.min() and s.max() <= 1 for s in data.splits.values())


# --- the real files

def binary(x):
    return bool(((x == 0) | (x == 1)).all()) and bool((x == 1).any())


def splits(data):
    data.setup()
    return [data.splits[s] for s in ("train", "val", "test")]


@real
@pytest.mark.parametrize("cls,mean", [(MNIST, 0.130660), (FashionMNIST, 0.286041)])
def test_real_mnist_and_fashion_have_the_published_splits_and_pixel_mean(cls, mean):
    train, val, test = splits(cls(DATA, binarize="none"))
    assert train.shape == (55000, 28, 28) and val.shape == (5000, 28, 28) and test.shape == (10000, 28, 28)
    assert train.min() == 0 and train.max() == 1
    assert torch.cat([train, val]).double().mean().item() == pytest.approx(mean, abs=5e-7)


def test_binarize_draws_bernoulli_of_each_pixel():
    p = torch.tensor([0.0, 0.01, 0.3, 0.5, 0.9, 1.0])
    x = binarize(p.expand(200_000, -1).contiguous())
    assert x.dtype == p.dtype and set(x.unique().tolist()) <= {0.0, 1.0}
    freq = x.double().mean(0)
    assert freq[0] == 0 and freq[-1] == 1  # never above 1, never below 0
    se = (p * (1 - p) / len(x)).sqrt().double()
    assert ((freq - p).abs()[1:-1] <= 5 * se[1:-1]).all(), (freq, p)


def test_an_epoch_serves_every_row_once_in_batches_shuffled_for_training_only():
    x = torch.arange(10.0).unsqueeze(1)
    torch.manual_seed(0)
    shuffled, ordered = list(Batches(x, 4, shuffle=True)), list(Batches(x, 4, shuffle=False))
    assert len(Batches(x, 4, shuffle=True)) == 3
    assert [len(b) for b in shuffled] == [len(b) for b in ordered] == [4, 4, 2]
    assert sorted(torch.cat(shuffled).flatten().tolist()) == list(range(10)) and torch.equal(torch.cat(ordered), x)
    assert not torch.equal(torch.cat(shuffled), x)
    torch.manual_seed(0)
    drawn = torch.get_rng_state()
    epoch = iter(Batches(x, 4, shuffle=True))  # Lightning's check of a loader: no draw until the first batch
    assert torch.equal(torch.get_rng_state(), drawn)
    assert torch.equal(torch.cat(list(epoch)), torch.cat(shuffled))  # torch's global RNG


@real
def test_real_mnist_binarisation_modes():
    static_train, val, test = splits(MNIST(DATA, binarize="static"))
    assert binary(static_train) and binary(val) and binary(test)
    gray_train, *_ = splits(MNIST(DATA, binarize="dynamic"))    # dynamic: binarised per batch, on device
    assert not binary(gray_train) and 0 <= gray_train.min() and gray_train.max() <= 1
    # one Bernoulli draw of 7.84M pixels: its mean is the gray mean (0.132515) within binomial noise
    assert test.double().mean().item() == pytest.approx(0.132515, abs=1e-3)


@real
def test_real_binarized_mnist_is_larochelles_50k_10k_10k():
    train, val, test = splits(BinarizedMNIST(DATA))
    assert train.shape == (50000, 28, 28) and val.shape == (10000, 28, 28) and test.shape == (10000, 28, 28)
    assert binary(train) and binary(val) and binary(test)
    # each pixel is one draw of MNIST's gray value: train+valid partition MNIST train, test is MNIST test
    assert torch.cat([train, val]).double().mean().item() == pytest.approx(0.130660, abs=1e-3)
    assert test.double().mean().item() == pytest.approx(0.132515, abs=1e-3)


@real
def test_real_binarized_mnist_amat_files_give_the_same_data_as_the_npz(tmp_path):
    root = copy("binarized_mnist", tmp_path, *(f"binarized_mnist_{s}.amat.gz" for s in ("train", "valid", "test")))
    for a, b in zip(splits(BinarizedMNIST(root)), splits(BinarizedMNIST(DATA))):
        assert torch.equal(a, b)


@real
def test_real_frey_face_is_1965_faces_in_a_seeded_split():
    data = FreyFace(DATA)
    train, val, test = splits(data)
    assert train.shape == (1565, 28, 20) and val.shape == (200, 28, 20) and test.shape == (200, 28, 20)
    everything = torch.cat([train, val, test])
    assert everything.min().item() == pytest.approx(8 / 255) and everything.max().item() == pytest.approx(238 / 255)
    ff = torch.as_tensor(scipy.io.loadmat(Path(DATA) / "frey_face" / "frey_rawface.mat")["ff"].T, dtype=torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(torch.unique(everything.flatten(1), dim=0, return_counts=True),
                                                 torch.unique(ff / 255, dim=0, return_counts=True)))  # partition ff
    again, other = splits(FreyFace(DATA)), splits(FreyFace(DATA, seed=1))
    assert torch.equal(again[2], test) and not torch.equal(other[2], test)


@real
@pytest.mark.parametrize("folder,files,data", [
    ("MNIST/raw", ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                   "t10k-labels-idx1-ubyte.gz"], lambda root: MNIST(root, download=False)),
    ("binarized_mnist", ["binarized_mnist.npz"], BinarizedMNIST),
    ("binarized_mnist", [f"binarized_mnist_{s}.amat.gz" for s in ("valid", "test", "train")], BinarizedMNIST),
    ("frey_face", ["frey_rawface.mat"], FreyFace),
])
@pytest.mark.parametrize("damage", [truncate, flip_last_byte])
def test_a_damaged_copy_of_a_real_file_is_refused_naming_it(tmp_path, folder, files, data, damage):
    root = copy(folder, tmp_path, *files, damage=damage)
    with pytest.raises(CorruptFile, match=files[-1]):
        data(root).setup()


@real
def test_an_amat_whose_content_was_altered_before_gzip_is_refused(tmp_path):
    root = copy("binarized_mnist", tmp_path, *(f"binarized_mnist_{s}.amat.gz" for s in ("train", "valid", "test")))
    path = root / "binarized_mnist" / "binarized_mnist_test.amat.gz"
    text = bytearray(gzip.decompress(path.read_bytes()))
    text[0] ^= 1                                                 # one pixel 0 <-> 1; still valid gzip
    path.write_bytes(gzip.compress(bytes(text)))
    with pytest.raises(CorruptFile, match="binarized_mnist_test.amat.gz"):
        BinarizedMNIST(root).setup()


# --- train.py end to end on each data set, with the likelihood it picks

BUDGET = ["trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=2",
          "trainer.log_every_n_steps=1"]
TARGET = {"bernoulli": "Bernoulli", "continuous_bernoulli": "ContinuousBernoulli", "gaussian": "Gaussian"}


def trained(train, *overrides):
    import yaml

    train(*overrides, *BUDGET)
    metrics = (train.dir / "csv" / "metrics.csv").read_text().splitlines()
    header, last = metrics[0].split(","), metrics[-1].split(",")
    test_elbo = float(last[header.index("test/elbo")])
    assert np.isfinite(test_elbo)
    return yaml.safe_load((train.dir / "config.yaml").read_text()), test_elbo


@pytest.mark.parametrize("name", [pytest.param(n, marks=real) for n in ("mnist", "fashion_mnist", "binarized_mnist",
                                                                        "frey_face")])
def test_train_runs_on_each_dataset_with_its_own_likelihood(train, name):
    config, _ = trained(train, f"dataset={name}", "trainer.limit_test_batches=2")
    assert config["likelihood"]["_target_"] == f"vaelab.likelihoods.{TARGET[LIKELIHOOD[name]]}"


def test_train_on_linear_gaussian_stays_below_the_exact_log_likelihood(train):
    config, test_elbo = trained(train, "dataset=linear_gaussian")
    assert config["likelihood"]["_target_"] == "vaelab.likelihoods.Gaussian"
    data = from_config("linear_gaussian", train.dir)
    data.setup()
    assert test_elbo < data.log_marginal(data.splits["test"]).mean().item()   # ELBO <= log p(x) (Gibbs)


def test_train_on_gray_pixels_picks_the_continuous_bernoulli(train):
    config, _ = trained(train, "dataset=digits", "dataset.binarize=none", "trainer.limit_test_batches=2")
    assert config["likelihood"]["_target_"] == "vaelab.likelihoods.ContinuousBernoulli"


def test_train_refuses_a_bernoulli_likelihood_on_real_data_before_any_work(train):
    result = train("dataset=linear_gaussian", "likelihood=bernoulli", check=False)
    assert result.returncode == 2
    assert "likelihood='bernoulli'" in result.stderr and "gaussian" in result.stderr
    assert not (train.dir / "checkpoints").exists() and not (train.dir / "csv").exists()
