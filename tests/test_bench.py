"""The benchmark runs at a tiny size and prints its tables (timings are its output, not asserted)."""

import os

import pytest

from vaelab import bench


@pytest.mark.skipif(not os.environ.get("VAELAB_DATA_DIR"), reason="needs MNIST under VAELAB_DATA_DIR")
def test_bench_prints_its_tables(capsys):
    bench.main(["--steps", "2", "--repeats", "1", "--samples", "1", "2", "--nll-samples", "3", "7"])
    out = capsys.readouterr().out
    assert "device: cpu" in out and "threads 1" in out
    for row in ("| vaelab |", "| vaelab, compile=true |", "| hand-written |", "| hand-written, default Adam |",
                "| common recipe |", "| 1 |", "| 2 |",
                "resident memory", "| 3 | 100 |", "| 7 | 1000 |"):
        assert row in out, row
