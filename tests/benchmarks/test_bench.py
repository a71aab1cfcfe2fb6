"""The benchmark runs at a tiny size and prints its tables (timings are its output, not asserted)."""

import re

import pytest
import torch

from benchmarks import bench
from vaelab.objectives import DisARM
from vaelab.objectives.base import LATENT_KINDS


@pytest.mark.requires_data
def test_bench_prints_its_tables(capsys):
    bench.main(["--steps", "2", "--repeats", "1", "--samples", "1", "2", "--nll-samples", "3", "7"])
    out = capsys.readouterr().out
    assert "device: cpu" in out and "threads 1" in out
    for row in ("| vaelab |", "| vaelab, compile=true |", "| hand-written |", "| hand-written, typical |",
                "| common recipe |", "| 1 |", "| 2 |",
                "resident memory", "| 3 | 100 |", "| 7 | 1000 |", "| linear, loss=disarm, S=2, batch 50 |",
                "| vaelab's module, Lightning's loop alone |", "| vaelab's objective, plain loop |",
                "| hand-written step, Lightning's loop |", "| hand-written step, Lightning's loop, manual optimisation |"):
        assert row in out, row


@pytest.mark.parametrize("argument", [["--steps", "0"], ["--nll-samples", "1000", "-5"], ["--repeats", "two"]])
def test_bench_refuses_a_bad_count_before_any_timing(capsys, argument):
    with pytest.raises(SystemExit) as exit:
        bench.main(argument)
    assert exit.value.code == 2
    assert "is not accepted: a positive integer" in capsys.readouterr().err


@pytest.mark.requires_data
def test_bench_times_every_supported_estimator_against_reinforce(capsys):
    bench.main(["--estimators-only", "--steps", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "| estimator, S=4, batch 128, MLP [200, 200] |" in out
    for kind in LATENT_KINDS:
        found = bench.supported(kind, 4)
        assert "reinforce" in found and ("disarm" in found) == (kind == "binary"), kind   # as the objectives declare
        rows = re.findall(rf"^\| latent={kind}, loss=(\w+) \| [\d.]+ \| ([\d.]+x)", out, re.M)
        assert sorted(name for name, _ in rows) == sorted(found), kind   # each supported one, once, and no other
        assert dict(rows)["reinforce"] == "1.00x", kind


def test_the_linear_rungs_time_the_same_step():
    """The hand-written DisARM loss and vaelab's objective give the same gradients on the same draws (their losses
    differ by the uniform prior's constant): the ladder's rungs time one step."""
    torch.manual_seed(0)
    vae = bench.linear_vae("cpu")
    encoder, decoder = bench.linear_networks("cpu")
    encoder.load_state_dict(vae.encoder.state_dict())
    decoder.load_state_dict(vae.decoder.state_dict())
    x = torch.rand(5, 28, 28).bernoulli()
    torch.manual_seed(1)
    hand = torch.autograd.grad(bench.disarm_loss(encoder, decoder, x), [*encoder.parameters(), *decoder.parameters()])
    torch.manual_seed(1)
    with bench.unchecked():
        ours = torch.autograd.grad(DisARM()(vae, x, 2).loss, [*vae.encoder.parameters(), *vae.decoder.parameters()])
    for a, b in zip(hand, ours, strict=True):
        assert a.abs().max() > 0 and torch.allclose(a, b, rtol=1e-4, atol=1e-6)
