"""The LightningModule: a VAE, an injected objective, the optimiser, and what is logged."""

from collections.abc import Callable
from contextlib import contextmanager
from functools import partial

import lightning.pytorch as L
import torch
from torch import nn
from torch.distributions import Distribution
from torchmetrics import MeanMetric

from vaelab.compat import logs_this_step
from vaelab.errors import require
from vaelab.metrics.health import ActiveUnits, posterior_health
from vaelab.metrics.likelihood import log_likelihood

FUSED_ADAM = ("cpu", "cuda")  # devices with torch's fused Adam kernel
FUSABLE = (torch.optim.Adam, torch.optim.AdamW)


@contextmanager
def unchecked():
    """torch.distributions skip their argument checks within: each is an `if not tensor.all()`, a host
    synchronisation on a GPU, several a training step; a non-finite encoder output still shows as a non-finite
    loss (vaelab.callbacks.nonfinite). Outside training steps (tests, diagnostics, evaluation) the checks stay on."""
    checked = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(checked)


class VAEModule(L.LightningModule):
    """Trains `vae` by `objective(vae, x, S)`; never looks at which objective it holds. Each step backpropagates
    the estimate's loss and its surrogate (which trains the objective's own parameters alone), and after the
    optimiser step hands the estimate to `objective.advance` (running averages, schedules).

    Logs train/loss and the comparable train/elbo every step, val/elbo each epoch and
    test/elbo at the end; the evaluation ELBO uses `eval_samples` exact draws from q.
    Validation and test also log posterior health (kl, recon, entropy or active_units), and
    test logs test/nll = -log p(x) by importance sampling with `nll_samples` draws (0: off).
    `optimizer(params)` builds the optimiser (a Hydra `_partial_` config; None: Adam at `lr`), and
    `scheduler(optimizer)`, if given, its learning-rate schedule, stepped each epoch. `prior_optimizer(params)`, if
    given, trains the learned prior's logits apart from the rest (the DisARM code's SGD at 1e-2 beside Adam at
    1e-4): stepped right after the optimiser on the same backward pass, so that Lightning's automatic optimisation,
    and with it gradient accumulation, stays.
    """

    def __init__(self, vae, objective, S: int = 1, lr: float = 1e-3, eval_samples: int = 1,
                 nll_samples: int = 1000, nll_chunk: int = 100, optimizer: Callable | None = None,
                 scheduler: Callable | None = None, prior_optimizer: Callable | None = None):
        super().__init__()
        require(lr > 0, "lr", lr, "a positive learning rate")
        require(eval_samples >= 1, "eval_samples", eval_samples, "a positive integer")
        require(nll_samples >= 0, "nll_samples", nll_samples, "0 (off) or a positive number of importance samples")
        require(nll_chunk >= 1, "nll_chunk", nll_chunk, "a positive number of samples per chunk")
        self.vae, self.objective = vae, objective
        self.estimate = None  # the training step's, until the objective advances on it
        self.S, self.eval_samples = S, eval_samples
        self.nll_samples, self.nll_chunk = nll_samples, nll_chunk
        self.optimizer = optimizer or partial(torch.optim.Adam, lr=lr)
        self.scheduler = scheduler
        require(prior_optimizer is None or bool(vae.prior_parameters()), "prior_optimizer", "given",
                "null unless the prior is learned (latent.learn_prior=true)")
        self.prior_optimizer, self.prior_steps, self.prior_state = prior_optimizer, None, None
        self.means = nn.ModuleDict()  # the evaluation means, one MeanMetric a logged name (log_mean)
        if vae.latent.kind == "continuous" and vae.latent.depth == 1:  # E_q[z|x] has no closed form for L > 1
            self.active_units = nn.ModuleDict({stage: ActiveUnits(vae.latent.size) for stage in ("val", "test")})

    def training_step(self, x, batch_idx):
        with unchecked():
            estimate = self.objective(self.vae, x, self.S)
        self.estimate = estimate  # for on_train_batch_end, after the optimiser step
        if self.logs_this_step():
            self.log("train/loss", estimate.loss)  # not prog_bar=True: vaelab.callbacks.progress says why
            self.log("train/elbo", estimate.elbo.mean())
            for name, value in estimate.metrics.items():
                self.log(f"train/{name}", value)
        return estimate.loss if estimate.surrogate is None else estimate.loss + estimate.surrogate

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.objective.advance(self.estimate)
        self.estimate = None

    def logs_this_step(self):
        """Whether Lightning writes this step's metrics (vaelab.compat: Lightning's rule, kept in one place)."""
        return logs_this_step(self.trainer)

    def validation_step(self, x, batch_idx):
        self.log_mean("val/elbo", self.vae.elbo(x, self.eval_samples), prog_bar=True)
        self.log_health(x, "val")

    def test_step(self, x, batch_idx):
        self.log_mean("test/elbo", self.vae.elbo(x, self.eval_samples))
        if self.nll_samples:
            self.log_mean("test/nll", -log_likelihood(self.vae, x, self.nll_samples, self.nll_chunk, seed=batch_idx))
        self.log_health(x, "test")

    def log_mean(self, name, values, **kwargs):
        """Log the mean over the epoch's data of per-datum `values` by a torchmetrics MeanMetric: under data
        parallelism each process sees its shard, and the metric sums the values and their count over the
        processes, so the mean is the whole set's, as on one device. (Lightning's own sync_dist averages the counts
        as integers, rounding them for uneven shards.) nan_strategy="disable" checks no value on the host, and
        then ignores MeanMetric's weights: a batch mean is logged as one value per datum instead."""
        if name not in self.means:
            self.means[name] = MeanMetric(nan_strategy="disable").to(self.device)
        self.means[name].update(values)
        self.log(name, self.means[name], metric_attribute=f"means.{name}", **kwargs)

    def log_health(self, x, stage):
        for name, value in posterior_health(self.vae, x, self.eval_samples).items():
            self.log_mean(f"{stage}/{name}", value.expand(len(x)))
        if hasattr(self, "active_units"):
            self.active_units[stage].update(self.vae.posterior(x).mean)
            self.log(f"{stage}/active_units", self.active_units[stage])

    def configure_optimizers(self):
        """The optimiser over every parameter, the objective's own in a group of their own at `objective.lr` (None:
        the model's lr), and its schedule if any. Adam (and AdamW) run fused, one kernel over every parameter, on CPU
        and CUDA unless the config says `fused`, where torch's default loops over the parameter tensors with several
        kernels each."""
        own = list(self.objective.parameters())
        groups = [{"params": [p for p in self.optimised() if all(p is not o for o in own)]}]
        if own:
            groups.append({"params": own} | ({} if self.objective.lr is None else {"lr": self.objective.lr}))
        fusable = getattr(self.optimizer, "func", None) in FUSABLE and "fused" not in self.optimizer.keywords
        optimizer = self.optimizer(groups, **({"fused": self.device.type in FUSED_ADAM} if fusable else {}))
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), "interval": "epoch"}}

    def optimised(self) -> list[nn.Parameter]:
        """The parameters the optimiser trains: all but those of a prior_optimizer, which this builds."""
        if self.prior_optimizer is None:
            return list(self.parameters())
        self.prior_steps = self.prior_optimizer(self.vae.prior_parameters())
        if self.prior_state is not None:
            self.prior_steps.load_state_dict(self.prior_state)
        own = {id(p) for p in self.vae.prior_parameters()}
        return [p for p in self.parameters() if id(p) not in own]

    def optimizer_step(self, *args, **kwargs):
        """The optimiser's step, then the prior's from the gradient of the same backward pass."""
        super().optimizer_step(*args, **kwargs)
        if self.prior_steps is not None:
            self.prior_steps.step()
            self.prior_steps.zero_grad(set_to_none=True)

    def on_save_checkpoint(self, checkpoint):
        if self.prior_steps is not None:
            checkpoint["prior_optimizer"] = self.prior_steps.state_dict()

    def on_load_checkpoint(self, checkpoint):
        """Lightning restores the module before it builds the optimisers: the prior's state waits for optimised()."""
        self.prior_state = checkpoint.get("prior_optimizer")
