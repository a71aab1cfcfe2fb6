"""The benchmark's grid is every valid (estimator, latent, S) and nothing else, and the results page renders
from a tiny sweep of real runs with its numbers read from them."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import sweep
from tests.conftest import ROOT
from tests.runs.test_sweeps import python
from vaelab.build import estimators
from vaelab.reporting import page

# The estimators issue 21 names per latent kind (reinforce is REINFORCE with leave-one-out baselines).
NAMED = {"continuous": {"elbo", "iwae", "iwae_dreg", "reinforce", "vargrad", "variance"},
         "discrete": {"reinforce", "vargrad", "variance", "gumbel", "gumbel_st", "vimco"},
         "binary": {"reinforce", "vargrad", "variance", "gumbel", "vimco", "arm", "disarm"}}


@pytest.fixture(scope="module")
def found():
    return estimators()


def pairs(runs):
    return {(loss, kind, S) for (kind, S), losses in runs.items() for loss in losses}


def valid(found, kinds, sizes, losses=None):
    """Every (loss, latent, S) the objectives accept: each declares its latents and least S."""
    return {(name, kind, S) for name, (objective, _) in found.items() for kind in kinds for S in sizes
            if (losses is None or name in losses) and kind in objective.latents and S >= objective.min_samples
            and not (name in ("arm", "disarm") and S % 2)}


def test_benchmark_grid_is_every_valid_pair_and_the_panel(found):
    spec = sweep.sweep_spec("benchmark")
    runs = sweep.grid(spec, {}, found)
    expected = valid(found, spec.latent, spec.S) | valid(found, spec.latent, spec.panel.S, spec.panel.loss)
    assert pairs(runs) == expected
    for kind, named in NAMED.items():
        assert named <= {loss for loss, k, S in expected if k == kind and S == 4}
    assert ("elbo", "discrete", 4) not in expected and ("vimco", "continuous", 4) not in expected
    assert ("iwae", "continuous", 1) in expected and ("vargrad", "continuous", 1) not in expected


def test_estimators_grid_lists_gumbel_vimco_and_elbo_where_they_apply(found):
    spec = sweep.sweep_spec("estimators")
    for kind in ("continuous", "discrete", "binary"):
        given, rest = sweep.given_values([f"latent={kind}", "trainer.max_epochs=2"])
        assert rest == ["trainer.max_epochs=2"]
        assert pairs(sweep.grid(spec, given, found)) == valid(found, [kind], spec.S)
    discrete = sweep.grid(spec, {"latent": ["discrete"]}, found)[("discrete", 2)]
    assert {"gumbel", "vimco"} <= set(discrete) and "elbo" not in discrete
    assert "elbo" in sweep.grid(spec, {"latent": ["continuous"]}, found)[("continuous", 2)]


def test_hierarchy_grid_is_every_estimator_with_a_multi_layer_form(found, capsys):
    assert sweep.grid(sweep.sweep_spec("hierarchy"), {}, found) == {
        ("binary2_linear", 4): ["reinforce", "vargrad", "variance", "vimco", "gumbel"]}
    given, _ = sweep.given_values(["loss=disarm,gumbel"])
    assert sweep.grid(sweep.sweep_spec("hierarchy"), given, found) == {("binary2_linear", 4): ["gumbel"]}
    assert "left out loss=disarm latent=binary2_linear S=4: L=2 stochastic layers are not supported" in capsys.readouterr().err


def test_command_line_losses_replace_the_grid_and_drop_invalid_pairs(found, capsys):
    given, _ = sweep.given_values(["loss=elbo,vimco", "latent=continuous,discrete", "S=1,2"])
    assert sweep.grid(sweep.sweep_spec("benchmark"), given, found) == {
        ("continuous", 1): ["elbo"], ("continuous", 2): ["elbo"], ("discrete", 2): ["vimco"]}
    assert "left out loss=vimco latent=discrete S=1" in capsys.readouterr().err


def test_every_run_of_the_benchmark_grid_steps_and_is_measured(found):
    """Each (loss, latent, S) the benchmark runs takes a training step and gives finite gradient diagnostics for
    the encoder and the decoder, on a small model of the benchmark's latents (binary and categorical as in the
    benchmark, a smaller Gaussian)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from torch import nn

    from vaelab.likelihoods import Bernoulli
    from vaelab.metrics.gradients import gradient_draws, gradient_statistics
    from vaelab.model import VAE

    x = (torch.rand(8, 6) < 0.5).float()
    for (kind, S), losses in sweep.grid(sweep.sweep_spec("benchmark"), {}, found).items():
        latent = instantiate(OmegaConf.load(ROOT / "conf" / "latent" / f"{kind}.yaml"))
        for loss in losses:
            torch.manual_seed(0)
            vae = VAE(latent, Bernoulli(), (6,), hidden=(7,), activation=nn.ReLU)
            objective = found[loss][0]
            objective(vae, x, S).loss.backward()
            for part in ("encoder", "decoder"):
                stats = gradient_statistics(gradient_draws(objective, vae, x, S, 2, part))
                assert all(torch.isfinite(v) for v in stats.values()), (loss, kind, S, part, stats)


def test_every_estimator_has_its_own_marker_and_line_style():
    names = [f"loss{i}" for i in range(12)]
    style = page.styles(names)
    assert len({(s["marker"], s["linestyle"]) for s in style.values()}) == len(names)


# Run directories are named by their overrides: few enough keys to stay under the file name limit.
TINY = ["dataset=digits", "latent=continuous", "S=2", "loss=vargrad,variance", "seed=0,1", "trainer.max_epochs=2",
        "trainer.limit_train_batches=4", "trainer.limit_test_batches=2", "nll_samples=20",
        "callbacks.diagnostics.every_n_steps=2"]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """`sweep.py benchmark` cut to two estimators x two seeds of a few batches, and its page."""
    where = tmp_path_factory.mktemp("bench")
    (where / "README.md").write_text(f"# vaelab\n\nbefore\n{page.BEGIN}\nold table\n{page.END}\nafter\n")
    python("sweep.py", "benchmark", "--dir", str(where / "sw"), *TINY, cwd=where)
    page.write_page(where / "sw", where / "docs" / "results.md", where / "README.md")
    return where


def test_page_tables_hold_the_mean_and_std_over_seeds_of_the_runs(tiny_sweep):
    text = (tiny_sweep / "docs" / "results.md").read_text()
    results = pd.read_csv(tiny_sweep / "sw" / "results.csv")
    assert set(results.status) == {"done"} and len(results) == 4
    for loss, group in results.groupby("loss"):
        [row] = [line for line in text.splitlines() if line.startswith(f"| {loss} ")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        nll, variance = group["test/nll"], group["grad/encoder/variance"]
        assert cells[:3] == [loss, "2", f"{nll.mean():.2f} ± {nll.std():.2f}"]
        assert f"{variance.mean():.3g} ± {variance.std():.3g}" in cells
    kl = results.groupby("loss")["test/kl"].mean()
    assert f"KL(q‖p) = {kl['variance']:.2f} nats under the variance loss against {kl['vargrad']:.2f} under VarGrad" in text
    best = results.groupby("loss")["test/nll"].mean().idxmin()
    assert f"the smallest test NLL is **{best}**'s" in text
    assert "python sweep.py benchmark" in text and "trainer.max_epochs=2" in text
    assert "the first 2 batches of 128 test images" in text and "k=20 importance samples" in text


def test_page_plots_are_linked_small_and_at_150_dpi(tiny_sweep):
    text = (tiny_sweep / "docs" / "results.md").read_text()
    pngs = sorted((tiny_sweep / "docs" / "results").glob("*.png"))
    assert {p.name for p in pngs} == {"val_elbo_vs_step.png", "val_elbo_vs_time.png", "elbo_vs_S.png",
                                      "grad_variance_vs_step.png"}
    for png in pngs:
        assert f"](results/{png.name})" in text
        assert png.stat().st_size <= 200_000
        assert Image.open(png).info["dpi"][0] == pytest.approx(page.DPI, abs=1)


def test_readme_headline_table_is_rewritten_between_its_markers_only(tiny_sweep):
    readme = (tiny_sweep / "README.md").read_text()
    assert readme.startswith("# vaelab\n\nbefore\n") and readme.endswith(f"{page.END}\nafter\n")
    inside = readme.split(page.BEGIN)[1].split(page.END)[0]
    assert "old table" not in inside and "| continuous |" in inside and "docs/results.md" in inside


def test_sweep_py_report_writes_the_page(tiny_sweep):
    readme = tiny_sweep / "again" / "README.md"
    readme.parent.mkdir()
    readme.write_text(f"{page.BEGIN}\n{page.END}\n")
    fig5 = tiny_sweep / "stojanovic_fig5.png"
    fig5.write_bytes((tiny_sweep / "docs" / "results" / "elbo_vs_S.png").read_bytes())
    python("sweep.py", "report", str(tiny_sweep / "sw"), "--markdown", str(readme.parent / "results.md"),
           "--readme", str(readme), "--figure", str(fig5), cwd=tiny_sweep)
    text = (readme.parent / "results.md").read_text()
    assert "## Continuous latent, S=2" in text and "| continuous |" in readme.read_text()
    assert "### Figure 5 of the variance-loss paper" in text and "](results/stojanovic_fig5.png)" in text
    shown, made = (np.asarray(Image.open(p).convert("RGB"), dtype=float)
                   for p in (readme.parent / "results" / "stojanovic_fig5.png", fig5))
    assert shown.shape == made.shape and np.abs(shown - made).mean() < 1    # the same picture, in 256 colours


@pytest.fixture(scope="module")
def references_panel(tmp_path_factory):
    """`sweep.py references` cut to one latent, two references and two seeds of a few batches, and the page that
    shows it as a panel beside the tiny benchmark."""
    where = tmp_path_factory.mktemp("references")
    python("sweep.py", "references", "--dir", str(where / "refs"), "dataset=digits", "latent=binary",
           "loss.reference=posterior,prior", "seed=0,1", "trainer.max_epochs=1", "trainer.limit_train_batches=4",
           "trainer.limit_test_batches=2", "nll_samples=20", "callbacks.diagnostics.every_n_steps=2", cwd=where)
    return where / "refs"


def test_the_references_panel_holds_each_reference_and_the_measured_answer(tiny_sweep, references_panel, tmp_path):
    from vaelab.reporting.panels import COLLAPSED

    markdown = tmp_path / "results.md"
    text = page.write_page(tiny_sweep / "sw", markdown, panels=[references_panel])
    results = pd.read_csv(references_panel / "results.csv")
    assert set(results.status) == {"done"} and len(results) == 8
    assert f"--panel {references_panel}" in text and "## The variance loss's reference distribution r" in text
    assert "python sweep.py references" in text and "### binary latent, S=4" in text
    means = results.groupby(["loss", "loss.reference"])[["test/kl", "test/elbo"]].mean()
    for (loss, reference), group in results.groupby(["loss", "loss.reference"]):
        [row] = [line for line in text.splitlines() if line.startswith(f"| {loss} ") and f"| {reference} " in line]
        nll = group["test/nll"]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:4] == [loss, reference, "2", f"{nll.mean():.2f} ± {nll.std():.2f}"]
    kl, elbo = means.loc[("variance", "prior")]
    assert f"prior: KL {kl:.2g}, test ELBO {elbo:.2f}" in text
    baseline = means.loc[("vargrad", "posterior"), "test/kl"]
    kept = [r for r in ("posterior", "prior") if means.loc[("variance", r), "test/kl"] >= COLLAPSED * baseline]
    assert (f"{', '.join(kept)} kept KL(q‖p)" if kept else "no reference kept KL(q‖p)") in text


def test_a_sweeps_wall_time_counts_only_while_a_run_was_going():
    """Runs overlapping under joblib count once; the gap between two invocations of the sweep not at all."""
    from vaelab.reporting.provenance import busy

    assert busy([(0, 10), (5, 20), (6, 8), (100, 130)]) == 50
    assert busy([(100, 130), (0, 10)]) == 40


@pytest.mark.parametrize("flag,given", [("--panel", "nowhere"), ("--figure", "nowhere.png")])
def test_a_missing_panel_or_figure_is_refused_before_any_report_is_written(tiny_sweep, flag, given):
    from vaelab.errors import ConfigError

    page_path = tiny_sweep / "refused" / "results.md"
    with pytest.raises(ConfigError, match=f"{flag}='{tiny_sweep / given}' is not accepted: with --markdown"):
        sweep.main(["report", str(tiny_sweep / "sw"), "--markdown", str(page_path), flag, str(tiny_sweep / given)])
    assert not page_path.exists()
