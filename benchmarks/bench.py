"""How much vaelab costs over a hand-written loop, and how it compares with the common recipe.

    python -m benchmarks.bench [--steps 430] [--repeats 5] [--threads 1] [--samples 1 4 16 64] [--mlp-only]
                               [--linear-only] [--estimators-only]

Contenders, timed in one process, interleaved, median of repeats, over the same number of steps
of the same MLP VAE (784-512-256-20, batch 128, Adam) on the same MNIST, dynamically binarised:
- `vaelab`: train.py's path: the MNIST data module, VAEModule and an injected objective, a
  Lightning Trainer with a CSV logger, train.py's default callbacks (checkpoints, figures, cost, wall clock,
  non-finite check, RNG state, interrupt); and the rungs between it and the hand-written loop, each taking one layer
  away: vaelab without the non-finite check, vaelab's module in Lightning's loop alone (no logger, checkpoint or
  callback), vaelab's objective in the plain loop (`--mlp-only` times these alone);
  `vaelab, compile=true` the same with torch.compile'd networks, timed after a first epoch that compiles;
- `hand-written`: a plain PyTorch loop over the in-memory tensor with the loss written by hand, vaelab's
  optimiser (Adam, fused on CPU and CUDA) and vaelab's binarisation (1[u < p]), so that its ratio to vaelab is
  the framework's overhead; `hand-written, typical` is the same loop with torch's default Adam and
  torch.bernoulli, as most hand-written loops have them;
- `common recipe`: torchvision's MNIST with per-item ToTensor and binarisation, a DataLoader and
  a plain LightningModule with Lightning's default checkpointing, as in the PyTorch examples' VAE.
Then the DisARM benchmark's linear model (issue 26: 784-200 binary latents-784, batch 50, one antithetic pair,
loss=disarm), where a step takes a few milliseconds and the framework's overhead shows most: `vaelab` against a
hand-written loop of the same DisARM step, in milliseconds per step, with the rungs between them that split the
difference: the hand-written step in Lightning's loop alone (the least any Lightning-run step pays), vaelab's objective
in the plain loop, and vaelab's module in Lightning's loop alone (`--linear-only` times this case alone).
`--estimators-only` times, alone, the cost of each estimator (issue 27): for each latent kind, every loss config that
supports it at the benchmark sweep's S (vaelab/conf/sweep/benchmark.yaml: S=4, net.hidden [200, 200]), as
vaelab.build.estimators() and the objectives' declared support find them, in milliseconds per step of vaelab's path
on that MLP at batch 128, against loss=reinforce (REINFORCE-LOO) timed in the same rounds.
Seconds per epoch are the per-step time times the steps of a 55k-image epoch (the median over repeats); at
S samples a timing runs max(5, steps / S) steps. A ratio is the median over repeats of the two contenders'
ratio within a repeat, where they ran one after the other, with its range. Last, the memory of evaluation:
the peak over the resting footprint of test/nll with k importance samples on a batch of test images, for
chunk sizes of the samples.
"""

import argparse
import copy
import logging
import math
import os
import shutil
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import lightning.pytorch as L
import torch
import torchvision
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf
from torch.nn import functional as F
from torchvision import transforms

from vaelab.build import estimators
from vaelab.data import MNIST
from vaelab.data.base import binarize
from vaelab.latents import Binary, Categorical, Gaussian
from vaelab.likelihoods import Bernoulli
from vaelab.metrics.likelihood import log_likelihood
from vaelab.model import VAE
from vaelab.module import FUSED_ADAM, VAEModule, unchecked
from vaelab.nets import mlp
from vaelab.objectives import ELBO, DisARM, VarianceLoss
from vaelab.objectives.base import LATENT_KINDS
from vaelab.paths import CONF, SWEEPS
from vaelab.run import built_callbacks

BATCH, HIDDEN, PIXELS = 128, (512, 256), 784
LINEAR_BATCH, LINEAR_D, LINEAR_LR = 50, 200, 1e-4   # the DisARM benchmark's linear model and its networks' Adam rate
# (vaelab/conf/experiment/dong2020_linear.yaml)
EPOCH_STEPS = math.ceil(55000 / BATCH)


class EpochTimer(L.Callback):
    """Seconds of the training epoch, data loading and logging included."""

    def on_train_epoch_start(self, trainer, module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        self.seconds = time.perf_counter() - self.start


def make_trainer(steps, device, log_dir, callbacks, epochs=1, profiler=None):
    return L.Trainer(max_epochs=epochs, limit_train_batches=steps, limit_val_batches=0, accelerator=device,
                     devices=1, logger=CSVLogger(log_dir, name="bench"), enable_progress_bar=False,
                     enable_model_summary=False, callbacks=callbacks, profiler=profiler)


def train_config(output_dir, without=()):
    """train.py's default callbacks (vaelab/conf/callbacks/default.yaml) but those named in `without`, writing under
    `output_dir`, and its profiler (vaelab/conf/trainer/default.yaml); no progress bar: no contender has one."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra.runtime.output_dir={output_dir}", "trainer.enable_progress_bar=false"],
                      return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        kept = {name: callback for name, callback in cfg.callbacks.items() if name not in without}
        return built_callbacks(kept, cfg.trainer), instantiate(cfg.trainer.profiler)


def time_vaelab(datamodule, latent, objective, S, steps, device, log_dir, compile=False, hidden=HIDDEN, without=()):
    """`compile`: train.py's compile=true, timed over a second epoch, after the compilation; `without`: the callbacks
    (keys of vaelab/conf/callbacks/default.yaml) left out."""
    vae = VAE(latent, Bernoulli(), (28, 28), hidden)
    if compile:
        vae.compile_networks()
    module = VAEModule(vae, objective, S=S)
    timer = EpochTimer()
    callbacks, profiler = train_config(tempfile.mkdtemp(dir=log_dir), without)  # a run folder of its own
    make_trainer(steps, device, log_dir, [timer, *callbacks], epochs=1 + compile, profiler=profiler).fit(
        module, datamodule=datamodule)
    return timer.seconds


def gaussian_loss(encoder, decoder, x, S=1):
    """-ELBO by hand: reparameterised z, Bernoulli log-likelihood, analytic KL."""
    mu, logvar = encoder(x).chunk(2, -1)
    z = mu + (0.5 * logvar).exp() * torch.randn(S, *mu.shape, device=x.device)
    logits = decoder(z)
    log_lik = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
    return (kl - log_lik.mean(0)).mean()


def variance_loss(encoder, decoder, x, S, D=20, K=10):
    """The variance loss by hand: Gumbel-max one-hot samples, detached; Var over S of f."""
    log_q_all = encoder(x).unflatten(-1, (D, K)).log_softmax(-1)
    gumbel = -torch.empty(S, *log_q_all.shape, device=x.device).exponential_().log()
    z = F.one_hot((log_q_all.detach() + gumbel).argmax(-1), K).to(x.dtype)
    logits = decoder(z.flatten(-2))
    log_lik = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    f = log_lik - D * math.log(K) - (z * log_q_all).sum((-1, -2))
    return f.var(0).mean()


def hand_written(sizes, loss, hidden=HIDDEN):
    """The hand-written MLP VAE of a latent whose encoder gives sizes[0] outputs and whose decoder takes sizes[1]
    inputs, and its `loss(encoder, decoder, x)` by hand: a build for time_plain_loop."""
    def build(device):
        encoder, decoder = mlp(PIXELS, sizes[0], hidden).to(device), mlp(sizes[1], PIXELS, hidden[::-1]).to(device)
        return [*encoder.parameters(), *decoder.parameters()], lambda x: loss(encoder, decoder, x.flatten(1))
    return build


def linear_vae(device):
    """vaelab's linear model: 784 pixels -> 200 Bernoulli logits -> 784 pixel logits, a uniform prior."""
    return VAE(Binary(LINEAR_D), Bernoulli(), (28, 28), ()).to(device)


def linear_networks(device):
    """The hand-written linear model: its encoder and decoder."""
    return mlp(PIXELS, LINEAR_D, ()).to(device), mlp(LINEAR_D, PIXELS, ()).to(device)


def disarm_loss(encoder, decoder, x):
    """The linear DisARM step's loss by hand (Dong et al. 2020, eq. 5): one antithetic pair b = 1[u < sigmoid(a)],
    b~ = 1[u > sigmoid(-a)] per datum, the encoder's logits a weighted by the DisARM signal, the decoder trained on
    log p(x, z) at both draws, a uniform prior taken as the constant -D log 2."""
    logits = encoder(x)
    u = torch.rand(logits.shape, device=x.device)
    b, b_anti = (u < torch.sigmoid(logits.detach())).float(), (u > torch.sigmoid(-logits.detach())).float()
    z = torch.stack([b, b_anti])
    log_lik = -F.binary_cross_entropy_with_logits(decoder(z), x.expand(2, *x.shape), reduction="none").sum(-1)
    log_q = -F.binary_cross_entropy_with_logits(logits.detach().expand_as(z), z, reduction="none").sum(-1)
    f = (log_lik - logits.shape[-1] * math.log(2) - log_q).detach()
    signal = 0.5 * (f[0] - f[1]).unsqueeze(-1) * (1 - 2 * b_anti) * (b != b_anti) * torch.sigmoid(logits.abs())
    return -(signal.detach() * logits).sum(-1).mean() - log_lik.mean()


def vaelab_step(vae, objective, S):
    """vaelab's objective on vaelab's model `vae` (on the device), as VAEModule's training step calls it: a build
    for time_plain_loop."""
    def loss(x):
        with unchecked():
            return objective(vae, x, S).loss
    return lambda device: (list(vae.parameters()), loss)


def time_plain_loop(data, steps, device, build, batch=BATCH, lr=1e-3, typical=False):
    """A plain loop over the in-memory tensor with vaelab's binarisation and optimiser (fused Adam); `build(device)`
    gives the parameters and the step's loss of a batch. `typical`: torch's default Adam and torch.bernoulli
    instead, as most hand-written loops have them."""
    parameters, loss = build(device)
    optimizer = torch.optim.Adam(parameters, lr=lr, fused=not typical and device in FUSED_ADAM)
    draw = torch.bernoulli if typical else binarize
    start = time.perf_counter()
    for index in torch.randperm(len(data), device=data.device)[: steps * batch].split(batch):
        x = draw(data[index])
        optimizer.zero_grad()
        loss(x).backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


class LinearDisARM(L.LightningModule):
    """The hand-written DisARM step as the least a LightningModule can be: no logging, and with `manual`, Lightning's
    manual optimisation (no closure)."""

    def __init__(self, device, manual):
        super().__init__()
        self.automatic_optimization = not manual
        self.encoder, self.decoder = linear_networks(device)

    def training_step(self, x, batch_idx):
        loss = disarm_loss(self.encoder, self.decoder, x.flatten(1))
        if self.automatic_optimization:
            return loss
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LINEAR_LR, fused=self.device.type in FUSED_ADAM)


def time_lightning_loop(datamodule, steps, device, module):
    """`module` trained by a Trainer with no logger, checkpoint or callback but the timer: Lightning's loop alone."""
    timer = EpochTimer()
    L.Trainer(max_epochs=1, limit_train_batches=steps, limit_val_batches=0, accelerator=device, devices=1,
              logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
              callbacks=[timer]).fit(module, datamodule=datamodule)
    return timer.seconds


def mlp_vae(device):
    """The default case's model: the MLP VAE with 20 Gaussian latents."""
    return VAE(Gaussian(20), Bernoulli(), (28, 28), HIDDEN).to(device)


def mlp_case(datamodule, data, steps, repeats, device, workdir, others=None):
    """Seconds per epoch of the MLP VAE, loss=elbo, S=1: vaelab against the hand-written loop and the rungs between
    them: vaelab without its per-step non-finite check, vaelab's module in Lightning's loop alone, vaelab's objective
    in the plain loop; then `others` ({name: timing}) timed in the same rounds. Returns the seconds."""
    times = interleaved({
        "vaelab": lambda: time_vaelab(datamodule, Gaussian(20), ELBO(), 1, steps, device, workdir),
        "vaelab, no non-finite check": lambda: time_vaelab(datamodule, Gaussian(20), ELBO(), 1, steps, device, workdir,
                                                           without=("nonfinite",)),
        "vaelab's module, Lightning's loop alone": lambda: time_lightning_loop(
            datamodule, steps, device, VAEModule(mlp_vae(device), ELBO(), S=1)),
        "vaelab's objective, plain loop": lambda: time_plain_loop(data, steps, device,
                                                                  vaelab_step(mlp_vae(device), ELBO(), 1)),
        "hand-written": lambda: time_plain_loop(data, steps, device, hand_written((40, 20), gaussian_loss)),
        **(others or {}),
    }, repeats)
    print(f"seconds per {EPOCH_STEPS}-step epoch (median)\n\n"
          "| loss=elbo, S=1 | s/epoch | vs hand-written (range over repeats) |\n| --- | --- | --- |")
    for name, seconds in times.items():
        print(f"| {name} | {per_epoch(statistics.median(seconds), steps):.2f} | {ratio(times, name, 'hand-written')} |")
    return times


def linear_case(datamodule, data, steps, repeats, device, workdir):
    """Milliseconds per step of the linear binary VAE: vaelab against the hand-written DisARM step, and the rungs
    between them, each adding one layer to the one below: the hand-written step run by Lightning's loop (manual
    optimisation, then automatic), vaelab's objective in the plain loop, vaelab's module in Lightning's loop alone,
    then with train.py's logger and callbacks (vaelab)."""
    times = interleaved({
        "vaelab": lambda: time_vaelab(datamodule, Binary(LINEAR_D), DisARM(), 2, steps, device, workdir, hidden=()),
        "vaelab's module, Lightning's loop alone": lambda: time_lightning_loop(
            datamodule, steps, device, VAEModule(linear_vae(device), DisARM(), S=2)),
        "vaelab's objective, plain loop": lambda: time_plain_loop(
            data, steps, device, vaelab_step(linear_vae(device), DisARM(), 2), LINEAR_BATCH, LINEAR_LR),
        "hand-written step, Lightning's loop": lambda: time_lightning_loop(
            datamodule, steps, device, LinearDisARM(device, manual=False)),
        "hand-written step, Lightning's loop, manual optimisation": lambda: time_lightning_loop(
            datamodule, steps, device, LinearDisARM(device, manual=True)),
        "hand-written": lambda: time_plain_loop(data, steps, device, hand_written((LINEAR_D, LINEAR_D), disarm_loss,
                                                                              hidden=()), LINEAR_BATCH, LINEAR_LR),
    }, repeats)
    print(f"| linear, loss=disarm, S=2, batch {LINEAR_BATCH} | ms/step | vs hand-written (range over repeats) |\n"
          "| --- | --- | --- |")
    for name, seconds in times.items():
        print(f"| {name} | {statistics.median(seconds) / steps * 1e3:.2f} | {ratio(times, name, 'hand-written')} |")


def supported(kind, S):
    """loss name -> objective of every loss config that trains latent `kind` at S, from their declared support."""
    return {name: objective for name, (objective, _) in estimators().items() if not objective.problems(kind, S)}


def estimators_case(datamodule, steps, repeats, device, workdir, baseline="reinforce"):
    """Milliseconds per step of each estimator, per latent kind, at the benchmark sweep's S and network, against
    `baseline` timed in the same rounds; each timing trains a fresh copy of the configured objective."""
    sweep = OmegaConf.load(SWEEPS / "benchmark.yaml")
    (S,), hidden = sweep.grid.S, tuple(sweep.net.hidden)
    print(f"| estimator, S={S}, batch {BATCH}, MLP {list(hidden)} | ms/step | vs loss={baseline} "
          "(range over repeats) |\n| --- | --- | --- |")
    for kind in LATENT_KINDS:
        latent = OmegaConf.load(CONF / "latent" / f"{kind}.yaml")
        found = supported(kind, S)
        times = interleaved({name: lambda o=objective: time_vaelab(datamodule, instantiate(latent), copy.deepcopy(o), S,
                                                                   steps, device, workdir, hidden=hidden)
                             for name, objective in found.items()}, repeats)
        for name, seconds in times.items():
            print(f"| latent={kind}, loss={name} | {statistics.median(seconds) / steps * 1e3:.2f} | "
                  f"{ratio(times, name, baseline)} |")


class RecipeVAE(L.LightningModule):
    """The PyTorch examples' VAE as a plain LightningModule."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = mlp(PIXELS, 40, HIDDEN), mlp(20, PIXELS, HIDDEN[::-1])

    def training_step(self, batch, batch_idx):
        x = batch[0].view(-1, PIXELS)
        mu, logvar = self.encoder(x).chunk(2, -1)
        recon = torch.sigmoid(self.decoder(mu + torch.randn_like(mu) * (0.5 * logvar).exp()))
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (bce + kld) / len(x)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def time_recipe(loader, steps, device, log_dir):
    timer = EpochTimer()
    make_trainer(steps, device, log_dir, [timer]).fit(RecipeVAE(), train_dataloaders=loader)
    return timer.seconds


def recipe_loader(raw_root, workdir):
    """torchvision's MNIST over a writable copy of the raw files (it extracts them beside themselves)."""
    shutil.copytree(raw_root / "MNIST" / "raw", workdir / "MNIST" / "raw")
    binarised = transforms.Compose([transforms.ToTensor(), transforms.Lambda(torch.bernoulli)])
    dataset = torchvision.datasets.MNIST(str(workdir), train=True, download=True, transform=binarised)
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)


def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class MemoryTrace(L.Callback):
    def __init__(self):
        self.mb = []

    def on_train_epoch_end(self, trainer, module):
        self.mb.append(resident_mb())


def peak_mb(run, device):
    """Peak memory of run() over what was in use before it, in MB: the device allocator's peak on CUDA, else the
    process's resident high-water mark (Linux; /proc/self/clear_refs resets it)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    before = resident_mb()
    Path("/proc/self/clear_refs").write_text("5")
    run()
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024 - before


def evaluation_memory(datamodule, device, ks, chunks=(100, 1000)):
    """Rows (k, chunk, peak MB, seconds) of test/nll on 128 test images."""
    vae = VAE(Gaussian(20), Bernoulli(), (28, 28), HIDDEN).to(device)
    x = datamodule.splits["test"][:BATCH].to(device)
    log_likelihood(vae, x, 1)  # first-call allocations are not the evaluation's
    rows = []
    for k in ks:
        for chunk in chunks:
            start = time.perf_counter()
            rows.append((k, chunk, peak_mb(lambda: log_likelihood(vae, x, k, chunk), device),
                         time.perf_counter() - start))
    return rows


def interleaved(contenders, repeats):
    """Seconds of each contender in each of `repeats` rounds, running them in turn."""
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            times[name].append(run())
    return times


def ratio(times, name, baseline):
    """Median over rounds of name's time over baseline's in the same round (run one after the other, so that a
    slow spell of the machine weighs on both), with the lowest and highest: "1.09x (1.05-1.14)"."""
    ratios = sorted(a / b for a, b in zip(times[name], times[baseline], strict=True))
    spread = f" ({ratios[0]:.2f}-{ratios[-1]:.2f})" if len(ratios) > 1 else ""
    return f"{statistics.median(ratios):.2f}x{spread}"


def per_epoch(seconds, steps):
    return seconds / steps * EPOCH_STEPS


def positive(text):
    """An argparse type: a positive integer, refused before any timing starts."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not accepted: a positive integer")
    return int(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=positive, default=EPOCH_STEPS,
                        help="training steps per timing (default: a whole epoch)")
    parser.add_argument("--repeats", type=positive, default=5)
    parser.add_argument("--threads", type=positive, default=1, help="torch threads (1 gives the steadiest ratios)")
    parser.add_argument("--samples", type=positive, nargs="+", default=[1, 4, 16, 64],
                        help="values of S to scale over")
    parser.add_argument("--nll-samples", type=positive, nargs="+", default=[1000, 5000],
                        help="values of k for the evaluation's memory")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", default=None, help="data root (default: $VAELAB_DATA_DIR)")
    alone = parser.add_mutually_exclusive_group()   # one case alone: two of them are refused before any timing
    alone.add_argument("--mlp-only", action="store_true",
                       help="time the MLP case alone: vaelab, its rungs and the hand-written loop")
    alone.add_argument("--linear-only", action="store_true", help="time the linear DisARM case alone")
    alone.add_argument("--estimators-only", action="store_true",
                       help="time each estimator against loss=reinforce, per latent kind, alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    device, steps = args.device, args.steps

    datamodule = MNIST(args.data_dir, batch_size=BATCH, download=False)
    datamodule.setup()
    data = datamodule.splits["train"].to(device)
    workdir = Path(tempfile.mkdtemp(prefix="vaelab-bench-"))
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, {steps} steps x {args.repeats} repeats\n")
    if args.estimators_only:
        estimators_case(datamodule, steps, args.repeats, device, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    linear = MNIST(args.data_dir, batch_size=LINEAR_BATCH, download=False)
    linear.setup()
    if args.linear_only:
        linear_case(linear, data, steps, args.repeats, device, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    if args.mlp_only:
        mlp_case(datamodule, data, steps, args.repeats, device, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    loader = recipe_loader(datamodule.root, workdir / "recipe")
    base = mlp_case(datamodule, data, steps, args.repeats, device, workdir, others={
        "vaelab, compile=true": lambda: time_vaelab(datamodule, Gaussian(20), ELBO(), 1, steps, device, workdir,
                                                    compile=True),
        "hand-written, typical": lambda: time_plain_loop(data, steps, device, hand_written((40, 20), gaussian_loss),
                                                         typical=True),
        "common recipe": lambda: time_recipe(loader, steps, device, workdir),
    })
    print(f"\ncommon recipe / vaelab: {ratio(base, 'common recipe', 'vaelab')}\n")

    print("| S | elbo vaelab | elbo hand-written | ratio | variance (discrete) vaelab | hand-written | ratio |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for S in args.samples:
        steps = max(5, args.steps // S)  # about the same work per timing at every S
        t = interleaved({
            "elbo": lambda: time_vaelab(datamodule, Gaussian(20), ELBO(), S, steps, device, workdir),
            "elbo hand": lambda: time_plain_loop(data, steps, device, hand_written((40, 20), partial(gaussian_loss, S=S))),
            "variance": lambda: time_vaelab(datamodule, Categorical(20, 10), VarianceLoss(), max(S, 2), steps,
                                            device, workdir),
            "variance hand": lambda: time_plain_loop(data, steps, device,
                                                     hand_written((200, 200), partial(variance_loss, S=max(S, 2)))),
        }, args.repeats)
        epoch = {name: per_epoch(statistics.median(seconds), steps) for name, seconds in t.items()}
        print(f"| {S} | {epoch['elbo']:.2f} | {epoch['elbo hand']:.2f} | {ratio(t, 'elbo', 'elbo hand')} | "
              f"{epoch['variance']:.2f} | {epoch['variance hand']:.2f} | {ratio(t, 'variance', 'variance hand')} |")

    print()
    linear_case(linear, data, args.steps, args.repeats, device, workdir)

    memory = MemoryTrace()
    module = VAEModule(VAE(Gaussian(20), Bernoulli(), (28, 28), HIDDEN), ELBO())
    make_trainer(args.steps, device, workdir, [memory], epochs=4).fit(module, datamodule=datamodule)
    print(f"\nresident memory after each of 4 epochs (MB): {', '.join(f'{m:.0f}' for m in memory.mb)}")

    print(f"\n| test/nll on {BATCH} images: k | chunk | peak memory over resting (MB) | seconds |\n"
          "| --- | --- | --- | --- |")
    for k, chunk, mb, seconds in evaluation_memory(datamodule, device, args.nll_samples):
        print(f"| {k} | {chunk} | {mb:.0f} | {seconds:.2f} |")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
