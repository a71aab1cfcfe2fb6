"""The benchmark runs at a tiny size and prints its tables (timings are its output, not asserted)."""

import re

import pytest
import torch

from benchmarks import bench
from vaelab.objectives import ELBO, DisARM
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
                "| hand-written step, Lightning's loop |", "| hand-written step, Lightning's loop, manual optimisation |",
                "| vaelab, no non-finite check |"):
        assert row in out, row
    assert out.count("| vaelab's objective, plain loop |") == 2   # a rung of the MLP table and of the linear one


@pytest.mark.requires_data
def test_bench_times_the_mlp_case_alone(capsys):
    bench.main(["--mlp-only", "--steps", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    rows = re.findall(r"^\| ([^|]+) \| [\d.]+ \| ([\d.]+x)", out, re.M)
    assert [name for name, _ in rows] == ["vaelab", "vaelab, no non-finite check", "vaelab's module, Lightning's loop alone",
                                          "vaelab's objective, plain loop", "hand-written"]
    assert dict(rows)["hand-written"] == "1.00x" and "linear" not in out and "common recipe" not in out


@pytest.mark.parametrize("argument", [["--steps", "0"], ["--nll-samples", "1000", "-5"], ["--repeats", "two"]])
def test_bench_refuses_a_bad_count_before_any_timing(capsys, argument):
    with pytest.raises(SystemExit) as exit:
        bench.main(argument)
    assert exit.value.code == 2
    assert "is not accepted: a positive integer" in capsys.readouterr().err


def test_bench_refuses_two_cases_alone_before_any_timing(capsys):
    with pytest.raises(SystemExit) as exit:
        bench.main(["--mlp-only", "--linear-only"])
    assert exit.value.code == 2
    assert "argument --linear-only: not allowed with argument --mlp-only" in capsys.readouterr().err


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


@pytest.mark.parametrize("case", ["linear", "mlp"])
def test_the_rungs_time_the_same_step(case):
    """The hand-written loss and vaelab's objective give the same gradients from the same weights and draws (the
    linear losses differ by the uniform prior's constant): a ladder's rungs time one step."""
    torch.manual_seed(0)
    vae, objective, S, sizes, loss, hidden = {
        "linear": (bench.linear_vae("cpu"), DisARM(), 2, (bench.LINEAR_D,) * 2, bench.disarm_loss, ()),
        "mlp": (bench.mlp_vae("cpu"), ELBO(), 1, (40, 20), bench.gaussian_loss, bench.HIDDEN)}[case]
    ours, our_loss = bench.vaelab_step(vae, objective, S)("cpu")
    hand, hand_loss = bench.hand_written(sizes, loss, hidden)("cpu")
    with torch.no_grad():
        for a, b in zip(hand, ours, strict=True):
            a.copy_(b)
    x = torch.rand(5, 28, 28).bernoulli()
    torch.manual_seed(1)
    hand_grads = torch.autograd.grad(hand_loss(x), hand)
    torch.manual_seed(1)
    our_grads = torch.autograd.grad(our_loss(x), ours)
    for a, b in zip(hand_grads, our_grads, strict=True):
        assert a.abs().max() > 0 and torch.allclose(a, b, rtol=1e-4, atol=1e-6)
