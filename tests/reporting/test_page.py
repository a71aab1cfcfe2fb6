"""The benchmark's grid is every valid (estimator, latent, S) and nothing else, and the results page renders
from a tiny sweep of real runs with its numbers read from them."""

import json
import re
import shutil

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
from vaelab.reporting.style import styles

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
    """Every (loss, latent, S) the objectives accept, as each declares it (Objective.problems: its latents, depth
    and least S; ARM and DisARM also refuse an odd S)."""
    depth = {kind: sweep.latent_support(kind)[1] for kind in kinds}
    return {(name, kind, S) for name, (objective, _) in found.items() for kind in kinds for S in sizes
            if (losses is None or name in losses) and not objective.problems(kind, S, depth[kind])}


def test_benchmark_grid_is_every_valid_pair_and_the_panel(found):
    spec = sweep.sweep_spec("benchmark")
    runs = sweep.grid(spec, {}, found)
    expected = valid(found, spec.latent, spec.S) | valid(found, spec.latent, spec.panel.S, spec.panel.loss)
    assert pairs(runs) == expected
    for kind, named in NAMED.items():
        assert named <= {loss for loss, k, S in expected if k == kind and S == 4}
    assert ("elbo", "discrete", 4) not in expected and ("vimco", "continuous", 4) not in expected
    assert ("iwae", "continuous", 1) in expected and ("vargrad", "continuous", 1) not in expected


def test_a_new_loss_config_joins_the_benchmark_where_it_declares_support(found):
    """Nothing lists the benchmark's estimators: a loss config that the objectives' registry finds (as a new
    vaelab/conf/loss/NAME.yaml would be) runs for every latent and S its objective accepts, and nowhere else."""
    from vaelab.objectives.base import Objective

    class BinaryOnly(Objective):
        latents = ("binary",)
        min_samples = 2

    spec = sweep.sweep_spec("benchmark")
    runs = sweep.grid(spec, {}, {**found, "new": (BinaryOnly(), 4)})
    assert {(kind, S) for (kind, S), losses in runs.items() if "new" in losses} == {("binary", 4)}
    assert pairs(runs) - {("new", "binary", 4)} == pairs(sweep.grid(spec, {}, found))


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
    [(key, losses)] = sweep.grid(sweep.sweep_spec("hierarchy"), {}, found).items()
    assert sweep.latent_support("binary2_linear") == ("binary", 2)
    assert key == ("binary2_linear", 4) and set(losses) == {name for name, (objective, _) in found.items()
                                                            if not objective.problems("binary", 4, 2)}
    assert {"reinforce", "vimco", "gumbel", "rebar", "relax"} <= set(losses) and "disarm" not in losses
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
        latent = instantiate(OmegaConf.load(ROOT / "vaelab" / "conf" / "latent" / f"{kind}.yaml"))
        for loss in losses:
            torch.manual_seed(0)
            vae = VAE(latent, Bernoulli(), (6,), hidden=(7,), activation=nn.ReLU)
            objective = found[loss][0]
            objective(vae, x, S).loss.backward()
            for part in ("encoder", "decoder"):
                stats = gradient_statistics(gradient_draws(objective, vae, x, S, 2, part))
                assert all(torch.isfinite(v) for v in stats.values()), (loss, kind, S, part, stats)


def test_every_estimator_has_its_own_colour_and_marker_and_its_own_marker_and_line_style():
    names = list(estimators())  # every loss config: the results page styles them together
    style = styles(names)
    assert len(names) > 10  # more than one colour cycle, where the styles could repeat
    assert len({(s["color"], s["marker"]) for s in style.values()}) == len(names)
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
    python("sweep.py", "benchmark", "--dir", str(where / "sw"), *TINY, cwd=where, env={"OMP_NUM_THREADS": "1"})
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
    collapsed = float(re.search(r"kept KL\(q‖p\) above ([0-9.]+) of VarGrad's", text).group(1))
    kept = [r for r in ("posterior", "prior") if means.loc[("variance", r), "test/kl"] >= collapsed * baseline]
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


def test_val_elbo_panels_are_scaled_to_the_learners_and_name_the_collapsed_off_scale():
    """A collapsed estimator at −542 nats would squash learners between −200 and −170 into one line: the panel spans
    the learners, and the collapsed one is named off scale with its value, in the legend and at the panel's foot."""
    from vaelab.reporting.style import plt

    steps = np.array([100.0, 200.0, 300.0])
    means = {"a": pd.Series([-200.0, -180.0, -172.0], steps), "b": pd.Series([-205.0, -185.0, -176.0], steps),
             "c": pd.Series([-210.0, -190.0, -181.0], steps), "variance": pd.Series([-545.0, -543.0, -542.4], steps)}
    fig, ax = plt.subplots()
    assert page.draw_curves(ax, means, styles(means), scaled=True) == ["variance"]
    low, high = ax.get_ylim()
    assert -215 < low < -210 and -172 < high < -170
    labels = ax.get_legend_handles_labels()[1]
    assert "variance (off scale: -542.4)" in labels and {"a", "b", "c"} <= set(labels)
    assert [t.get_text() for t in ax.texts] == ["variance -542.4 ↓"]
    plt.close(fig)
    # learners alone, or a log axis, keep matplotlib's own limits and every plain name
    assert page.off_scale(pd.Series({"a": -172.0, "b": -176.0, "c": -181.0, "d": -190.0})) == []
    fig, ax = plt.subplots()
    assert page.draw_curves(ax, means, styles(means), scaled=False) == [] and not ax.texts
    assert ax.get_ylim()[0] < -542
    plt.close(fig)


def a_copy_without(sweep, where, column):
    """A copy of a sweep's run folders (no report in it) whose logged metrics lack `column`."""
    import shutil

    copy = shutil.copytree(sweep, where, ignore=shutil.ignore_patterns("results.csv", "summary.md", "*.png"))
    for path in copy.rglob("csv/metrics.csv"):
        pd.read_csv(path).drop(columns=[column]).to_csv(path, index=False)
    return copy


def test_the_readme_is_rewritten_only_when_asked(tiny_sweep, tmp_path):
    readme = ROOT / "README.md"
    before = readme.read_bytes()
    sweep.main(["report", str(tiny_sweep / "sw"), "--markdown", str(tmp_path / "results.md")])
    assert readme.read_bytes() == before and "--readme" not in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize("case", ["no diagnostics", "page under a file", "readme without a page", "read-only sweep"])
def test_a_report_that_cannot_be_made_is_refused_in_one_line_before_any_file_is_written(tiny_sweep, tmp_path, case):
    import os

    from vaelab.errors import ConfigError

    sw = a_copy_without(tiny_sweep / "sw", tmp_path / "sw", "grad/encoder/variance" if case == "no diagnostics"
                        else "time/elapsed")
    (tmp_path / "file").write_text("")
    markdown = tmp_path / ("file" if case == "page under a file" else "docs") / "results.md"
    args, expected = {
        "no diagnostics": ([], f"--markdown='{markdown}' is not accepted: a page of a sweep with gradient diagnostics"),
        "page under a file": ([], f"--markdown='{markdown}' is not accepted: a path this user can write"),
        "readme without a page": (["--readme", str(tmp_path / "file")], "--readme="),
        "read-only sweep": ([], f"report='{sw}' is not accepted: a path this user can write"),
    }[case]
    if case == "read-only sweep":
        if os.geteuid() == 0:
            pytest.skip("root writes to read-only folders")
        sw.chmod(0o555)
    command = ["report", str(sw), *args] + ([] if case == "readme without a page" else ["--markdown", str(markdown)])
    with pytest.raises(ConfigError, match=re.escape(expected)):
        sweep.main(command)
    sw.chmod(0o755)
    assert not (sw / "results.csv").exists() and not markdown.exists() and not markdown.with_suffix("").exists()


@pytest.fixture(scope="module")
def protocol_panel(tmp_path_factory):
    """`sweep.py dong2020` (the DisARM protocol) cut to two estimators and six steps on the digits, evaluated every
    three steps."""
    where = tmp_path_factory.mktemp("protocol")
    python("sweep.py", "dong2020", "--dir", str(where / "dong"), "dataset=digits", "loss=disarm,reinforce",
           "trainer.max_steps=6", "trainer.val_check_interval=3", "trainer.log_every_n_steps=3", "nll_samples=5",
           "callbacks.bounds.samples=5", cwd=where)
    return where / "dong"


def table_rows(text):
    """Each row of each markdown table in `text`: its cells, then {column title: cell}."""
    header = None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None or set(cells[0]) <= {"-", ":"}:
            header = header if cells else None
            continue
        if header is None:
            header = cells
            continue
        yield [*cells, dict(zip(header, cells))]


def test_the_protocol_panel_says_its_budget_and_shows_the_evaluations_against_step(tiny_sweep, protocol_panel, tmp_path):
    markdown = tmp_path / "results.md"
    text = page.write_page(tiny_sweep / "sw", markdown, panels=[protocol_panel])
    results = pd.read_csv(protocol_panel / "results.csv").set_index("loss")
    assert set(results.status) == {"done"} and set(results.index) == {"disarm", "reinforce"}
    assert "## The DisARM protocol, at 6 of its 1,000,000 steps (dong)\n" in text and "full budget" not in text
    assert f"python sweep.py dong2020 --dir {protocol_panel} loss=disarm,reinforce " in text   # what it chose
    for loss, row in results.iterrows():
        [cells] = [cells for cells in table_rows(text) if cells[0] == loss and "test bound (nats)" in cells[-1]]
        assert cells[-1]["train ELBO (nats)"] == f"{row['eval/train_elbo']:.2f}"
        assert cells[-1]["test bound (nats)"] == f"{row['eval/test_bound']:.2f}"
        assert f"{loss} {1e6 * row['cost/sec_per_step'] / 3600:.1f} h" in text
    for metric, what in (("eval/train_elbo", "by the training ELBO"), ("eval/test_bound", "by the test bound")):
        ranked = sorted(zip(results[metric], results.index), reverse=True)
        assert f"{what}: " + ", ".join(f"{loss} {value:.2f}" for value, loss in ranked) in text
    for metric in ("train_elbo", "test_bound"):
        png = markdown.with_suffix("") / f"dong_{metric}_vs_step.png"   # the folder's name: another dong2020 keeps its
        assert png.is_file() and f"](results/{png.name})" in text


def test_a_panel_written_into_a_page_is_the_section_the_whole_page_gives_it_and_the_rest_is_kept(
        tiny_sweep, protocol_panel, tmp_path):
    """`report SWEEP --into PAGE` adds the sweep's panel to a page made without it, as the whole page made with
    `--panel SWEEP` shows it; run again, it replaces that section in place and touches no other line."""
    markdown = tmp_path / "results.md"
    alone = page.write_page(tiny_sweep / "sw", markdown)
    shutil.rmtree(markdown.with_suffix(""))    # the page's figures' folder is made again where it is missing
    assert sweep.main(["report", str(protocol_panel), "--into", str(markdown)]) == 0
    into = markdown.read_text()
    begin, end = page.panel_markers(protocol_panel)
    section = into[into.index(begin): into.index(end) + len(end) + 2]
    assert into.replace(section, "", 1) == alone
    assert "## The DisARM protocol, at 6 of its 1,000,000 steps" in section and "![" in section
    assert f"Written by `python sweep.py report {protocol_panel} --into {markdown}`." in section
    assert section in page.write_page(tiny_sweep / "sw", markdown, panels=[protocol_panel])
    for metric in ("train_elbo", "test_bound"):
        assert (markdown.with_suffix("") / f"dong_{metric}_vs_step.png").is_file()
    markdown.write_text(alone.replace("## Plots", f"{begin}\nstale\n{end}\n\n## Plots"))
    assert sweep.main(["report", str(protocol_panel), "--into", str(markdown)]) == 0
    assert markdown.read_text() == into


@pytest.mark.parametrize("case", ["missing page", "with --markdown", "no finished run", "not report"])
def test_a_panel_that_cannot_be_written_into_a_page_is_refused_in_one_line_before_any_file_is_written(
        tiny_sweep, protocol_panel, tmp_path, case):
    from vaelab.errors import ConfigError

    markdown, empty = tmp_path / "results.md", tmp_path / "empty"
    empty.mkdir()
    if case != "missing page":
        markdown.write_text("# page\n")
    args, expected = {
        "missing page": (["report", str(protocol_panel)], f"--into='{markdown}' is not accepted: an existing results page"),
        "with --markdown": (["report", str(protocol_panel), "--markdown", str(tmp_path / "other.md")],
                            "--markdown="),
        "no finished run": (["report", str(empty)], f"report='{empty}' is not accepted: a sweep's folder"),
        "not report": (["dong2020"], "--into="),
    }[case]
    with pytest.raises(ConfigError, match=re.escape(expected)):
        sweep.main([*args, "--into", str(markdown)])
    assert sorted(p.name for p in tmp_path.iterdir()) == (["empty"] if case == "missing page" else ["empty", "results.md"])
    assert case == "missing page" or markdown.read_text() == "# page\n"


@pytest.mark.parametrize("key", ["commit", "threads"])
def test_the_page_names_the_commit_and_threads_the_runs_trained_with(tiny_sweep, tmp_path, monkeypatch, key):
    """Each run records in status.json the commit of the code it ran and its OMP_NUM_THREADS; the page states those,
    not the report's, and says where it had to fall back on the report's own."""
    from vaelab.lifecycle import code_commit, write_status
    from vaelab.reporting import provenance
    from vaelab.reporting.report import read_sweep

    monkeypatch.setenv("OMP_NUM_THREADS", "7")   # the report's, unlike the runs' (tests' commands run with 1)
    state = {"commit": code_commit(), "threads": "1"}[key]
    runs, _ = read_sweep(tiny_sweep / "sw")
    lines = "\n".join(provenance.provenance(tiny_sweep / "sw", runs, runs[runs.status == "done"]))
    assert {"commit": f"- commit `{state}`; sweep started", "threads": "OMP_NUM_THREADS=`1`; GPU"}[key] in lines
    old, new, bare = (tmp_path / name for name in ("old", "new", "bare"))
    for folder, value in ((old, "1111111"), (new, "2222222"), (bare, None)):
        folder.mkdir()
        write_status(folder, "done")
        record = json.loads((folder / "status.json").read_text())
        record["owner"][key] = value
        (folder / "status.json").write_text(json.dumps(record))
    stated, own = {"commit": (provenance.commits, code_commit()), "threads": (provenance.threads, "7")}[key]
    assert stated([new, old, bare]) == "`1111111`, `2222222`"
    assert stated([bare]) == f"`{own}` (the report's: the runs recorded none)"
