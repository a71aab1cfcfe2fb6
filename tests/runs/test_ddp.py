"""Data parallelism on the CPU, two processes (DDP over gloo): each trains on its own shard of every epoch, so an
epoch takes half the steps, and the logged val/test metrics are those of one process evaluating the whole sets
on the same weights."""

import csv
import math
from collections import Counter

import lightning.pytorch as L
import pytest
import torch

from vaelab.data import Digits
from vaelab.data.base import Batches
from vaelab.finished import load_run

RUN = ["dataset=digits", "dataset.binarize=none", "dataset.val_size=201", "dataset.test_size=299",  # uneven shards
       "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "trainer.max_epochs=1",
       "latent._target_=tests.runs.ddp_toys.MeanDrawnGaussian", "latent.D=2", "net.hidden=[16]",
       "nll_samples=4", "nll_chunk=4", "trainer.log_every_n_steps=1",
       "+callbacks.record._target_=tests.runs.ddp_toys.RecordBatches"]


@pytest.mark.parametrize("even", [True, False])
def test_each_process_serves_its_own_shard_of_the_order(even):
    x, order = torch.arange(11)[:, None], torch.randperm(11)
    shards = [torch.cat(list(Batches(x, 2, shuffle=True, even=even, rank=r, world_size=3, broadcast=lambda _: order)))
              for r in range(3)]
    seen = torch.cat(shards).flatten()
    assert sorted(set(seen.tolist())) == list(range(11))                # every row served
    if even:                                                            # 4 rows each, the first row of the order twice
        assert [len(s) for s in shards] == [4, 4, 4] and len(seen) == 12
        assert [len(Batches(x, 2, True, even=True, rank=r, world_size=3)) for r in range(3)] == [2, 2, 2]
    else:                                                               # every row once: a partition
        assert [len(s) for s in shards] == [4, 4, 3] and len(seen) == 11
        assert [len(Batches(x, 2, True, rank=r, world_size=3)) for r in range(3)] == [2, 2, 2]
    torch.testing.assert_close(torch.cat([s[:3] for s in shards]).flatten(), order[:9].reshape(3, 3).T.flatten())


def rows(tensors) -> Counter:
    return Counter(tuple(row.flatten().tolist()) for t in tensors for row in t)


def test_two_processes_train_on_disjoint_shards_and_log_the_metrics_of_the_whole_sets(train):
    train(*RUN, f"+callbacks.record.folder={train.dir}")
    data = Digits(binarize="none")
    data.setup()
    n = len(data.splits["train"])
    steps = math.ceil(math.ceil(n / 2) / data.batch_size)
    seen = [torch.load(train.dir / f"batches_{rank}.pt") for rank in (0, 1)]
    assert [len(batches) for batches in seen] == [steps, steps] and 2 * steps - 1 <= math.ceil(n / data.batch_size)
    assert torch.load(train.dir / "checkpoints" / "last.ckpt")["global_step"] == steps
    both, whole = rows(seen[0] + seen[1]), rows([data.splits["train"]])
    assert not whole - both                                             # every training row was served,
    assert sum((both - whole).values()) == 2 * math.ceil(n / 2) - n     # once, bar the one that fills the last shard

    with open(train.dir / "csv" / "metrics.csv") as f:
        logged = {k: float(v) for row in csv.DictReader(f) for k, v in row.items() if v and k.startswith(("val/", "test/"))}
    toys = ["tests.runs.ddp_toys.MeanDrawnGaussian", "tests.runs.ddp_toys.RecordBatches"]   # the test's own targets
    module, datamodule, _ = load_run(train.dir, trusted=toys)          # best.ckpt: the weights of the validation
    one = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    (val,), (test,) = one.validate(module, datamodule=datamodule, verbose=False), one.test(module, datamodule, verbose=False)
    for key in ("val/elbo", "val/kl", "val/recon", "test/elbo", "test/nll", "test/kl", "test/recon"):
        assert logged[key] == pytest.approx({**val, **test}[key], rel=1e-5, abs=1e-6), key
