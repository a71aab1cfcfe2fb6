"""The training step never waits for the device: no value is read back to the host (`.item()`, `bool()`,
`float()`, `.tolist()` and ops whose output size depends on values) from a batch's start to the next's
(Lightning's own bookkeeping after the batch included), on steps that log nothing: each estimator's options here,
every estimator's defaults on every latent kind and depth it supports in tests/objectives/test_conformance.py.
Seen through a dispatch mode on the CPU, so reads inside a kernel (below the dispatcher) are not counted;
vaelab.latents avoids the known ones."""

from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf
from torch.distributions import Normal
from torch.utils._python_dispatch import TorchDispatchMode

from vaelab.callbacks.cost import Cost
from vaelab.callbacks.nonfinite import NonFinite
from vaelab.callbacks.progress import ProgressBar
from vaelab.data import Digits
from vaelab.latents import SyncFreeNormal, SyncFreeOneHotCategorical
from vaelab.likelihoods import Bernoulli
from vaelab.model import VAE
from vaelab.module import VAEModule

CONF = Path(__file__).resolve().parents[2] / "vaelab" / "conf"
READS_BACK = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "repeat_interleave"}  # aten ops
READ_METHODS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")  # torch.Tensor's
LATENTS = {"continuous": {"D": 4}, "discrete": {"D": 3, "K": 4}, "binary": {"D": 6}}


class HostReads(TorchDispatchMode, L.Callback):
    """Records reads of device values by the host from each training batch's start to the next's (or the epoch's
    end)."""

    def __init__(self, monkeypatch):
        super().__init__()
        self.reads, self.batches, self.batch, self.active = [], set(), None, False  # batches: those with a read
        for name in READ_METHODS:
            monkeypatch.setattr(torch.Tensor, name, self.recording(name, getattr(torch.Tensor, name)))

    def recording(self, name, method):
        def read(tensor, *args, **kwargs):
            if self.active:
                self.record(f"Tensor.{name}")
            return method(tensor, *args, **kwargs)
        return read

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in READS_BACK:
            self.record(str(func))
        return func(*args, **(kwargs or {}))

    def record(self, read):
        self.reads.append(read)
        self.batches.add(self.batch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.stop()
        self.active, self.batch = True, batch_idx
        self.__enter__()

    def on_train_epoch_end(self, trainer, pl_module):
        self.stop()

    def stop(self):
        if self.active:
            self.__exit__(None, None, None)
            self.active = False


def reads_in_training(monkeypatch, loss, latent, nonfinite_every, progress_bar=None, log_every=1000, logger=False,
                      **loss_args):
    """The count of host reads over 6 training steps: its `reads`, and the `batches` that read."""
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "loss" / f"{loss}.yaml"), {"loss": loss_args})
    latent_cfg = OmegaConf.merge(OmegaConf.load(CONF / "latent" / f"{latent}.yaml"), LATENTS[latent])
    vae = VAE(instantiate(latent_cfg), Bernoulli(), (8, 8), hidden=(16,))
    module = VAEModule(vae, instantiate(cfg.loss), S=cfg.get("S", 1))
    counter = HostReads(monkeypatch)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=6, limit_val_batches=0,
                        log_every_n_steps=log_every, accelerator="cpu", logger=logger, enable_checkpointing=False,
                        enable_progress_bar=progress_bar is not None, enable_model_summary=False,
                        callbacks=[*([progress_bar] if progress_bar else []), Cost(),  # before the count's batch end
                                   NonFinite("stop", every_n_steps=nonfinite_every), counter])
    trainer.fit(module, datamodule=Digits(batch_size=32))
    return counter


@pytest.mark.parametrize("loss,latent,options", [
    *[("reinforce", "discrete", {"baseline": b}) for b in ("none", "ema", "nvil")],  # loo is the default
    ("elbo", "continuous", {"analytic_kl": False}), ("iwae", "continuous", {"dreg": True}),
    ("gumbel", "discrete", {"straight_through": True, "analytic_kl": False}), ("disarm", "binary", {"variant": "arm"}),
    ("variance", "discrete", {"decoder": "elbo"}),
    # the estimators that learn their control variates: each double backward stays on the device
    *[(loss, latent, {}) for loss in ("rebar", "relax") for latent in ("discrete", "binary")],
    ("relax", "binary", {"with_x": True}), ("double_cv", "binary", {}), ("rodeo", "binary", {}),
])
def test_every_option_of_the_estimators_reads_nothing_back(monkeypatch, loss, latent, options):
    assert reads_in_training(monkeypatch, loss, latent, nonfinite_every=1000, **options).reads == []


def test_the_count_sees_a_read_back(monkeypatch):
    # the non-finite check read every step: one read a step, which the count must see
    assert reads_in_training(monkeypatch, "elbo", "continuous", nonfinite_every=1).reads == ["Tensor.tolist"] * 6


def test_logging_reads_the_device_only_on_the_steps_that_log(monkeypatch, tmp_path):
    # the logger reads the metrics at batches 2 and 5; had the module logged one with prog_bar=True, Lightning
    # would read it back at the end of every later batch of the epoch as well
    count = reads_in_training(monkeypatch, "elbo", "continuous", 1000, log_every=3, logger=CSVLogger(tmp_path))
    assert count.batches == {2, 5}


def test_train_pys_progress_bar_reads_the_device_only_on_the_steps_that_log(monkeypatch):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["trainer.log_every_n_steps=3"])
    bar = instantiate(cfg.callbacks.progress_bar)
    # metrics are logged at batches 2 and 5; a refresh reads them back
    assert reads_in_training(monkeypatch, "elbo", "continuous", 1000, bar, log_every=3).batches == {2, 5}
    # refreshed every step, the bar reads the last logged metrics on the steps between
    every_step = ProgressBar(refresh_rate=1)
    assert reads_in_training(monkeypatch, "elbo", "continuous", 1000, every_step, log_every=3).batches == {2, 3, 4, 5}


def test_the_sync_free_samplers_draw_the_distributions_they_replace():
    torch.manual_seed(0)
    logits = torch.tensor([[0.3, -1.0, 2.0], [0.0, 0.0, 0.5]], dtype=torch.float64)
    q = SyncFreeOneHotCategorical(logits=logits)
    frequencies, n = q.sample((200_000,)).mean(0), 200_000
    torch.testing.assert_close(frequencies, q.probs, rtol=0, atol=5 * (0.25 / n) ** 0.5)  # 5 standard errors at most
    loc, scale = torch.tensor([0.5, -1.0], requires_grad=True), torch.tensor([2.0, 0.1], requires_grad=True)
    torch.manual_seed(1)
    drawn = SyncFreeNormal(loc, scale).sample((3,))
    torch.manual_seed(1)
    assert torch.equal(drawn, Normal(loc, scale).rsample((3,)).detach()) and not drawn.requires_grad
    torch.manual_seed(2)
    z = SyncFreeNormal(loc, scale).rsample((3,))  # reparameterised in two ops: the same draws and gradients
    torch.manual_seed(2)
    expected = Normal(loc, scale).rsample((3,))
    torch.testing.assert_close(z, expected)
    weights = torch.randn(3, 2)
    for got, want in zip(torch.autograd.grad((z * weights).sum(), (loc, scale)),
                         torch.autograd.grad((expected * weights).sum(), (loc, scale)), strict=True):
        torch.testing.assert_close(got, want)
