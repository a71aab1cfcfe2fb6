"""The binary-latent papers' two numbers (DisARM, ARMS, RODEO), on the validation schedule."""

import math

import lightning.pytorch as L
import torch

from vaelab.data.base import binarize
from vaelab.errors import require
from vaelab.metrics.likelihood import log_likelihood
from vaelab.rng import seeded


class Bounds(L.Callback):
    """At every validation after the sanity check (trainer.val_check_interval steps apart, with
    check_val_every_n_epoch=null), logs

        eval/train_elbo = mean over the whole training set of f(z, x), one draw z ~ q(z|x) per datum,
        eval/test_bound = mean over the test set of log (1/k) sum_k exp f(z_k, x), k draws z_k ~ q(z|x),

    as the DisARM code's evaluate(train_ds, num_eval_samples=1) and evaluate(test_ds, num_eval_samples=100)
    (google-research/disarm/binary/experiment_launcher_singlelayer.py). Training images that training binarises
    dynamically are binarised afresh, as the code's training stream does. The draws come from `seed` and the step,
    so evaluating leaves the training random stream where it was. `batch_size` data at a time, each with all k draws;
    trainer.limit_val_batches limits these batches as it does validation's.
    """

    def __init__(self, samples: int = 100, batch_size: int = 100, seed: int = 0):
        require(isinstance(samples, int) and samples >= 1, "callbacks.bounds.samples", samples, "a positive integer")
        require(isinstance(batch_size, int) and batch_size >= 1, "callbacks.bounds.batch_size", batch_size,
                "a positive integer")
        self.samples, self.batch_size, self.seed = samples, batch_size, seed

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        data, vae = trainer.datamodule, pl_module.vae
        with seeded(self.seed + trainer.global_step, pl_module.device):
            train = [vae.elbo(binarize(x) if data.binarize == "dynamic" else x)
                     for x in self.batches(trainer, "train")]
        test = [log_likelihood(vae, x, self.samples, self.samples, seed=self.seed + i)
                for i, x in enumerate(self.batches(trainer, "test"))]
        pl_module.log("eval/train_elbo", torch.cat(train).mean())
        pl_module.log("eval/test_bound", torch.cat(test).mean())

    def batches(self, trainer, split):
        batches = trainer.datamodule.splits[split].split(self.batch_size)
        limit = trainer.limit_val_batches
        return batches[: limit if isinstance(limit, int) else math.ceil(limit * len(batches))]
