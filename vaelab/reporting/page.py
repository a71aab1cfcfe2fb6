"""The results page (docs/results.md) of a benchmark sweep, generated from its run records: a table per latent
kind (mean ± std over seeds), comparison plots, the measured discussion and how the numbers were made.

    python sweep.py report SWEEP_DIR --markdown docs/results.md

Every number on the page is read from the runs (vaelab.reporting.report loads them); the sentences of the
discussion are templates whose numbers, winners and verdicts the data fill in.
"""

import os
from itertools import cycle
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from vaelab.reporting.panels import panel
from vaelab.reporting.provenance import provenance, unfinished
from vaelab.reporting.report import ESTIMATOR, metrics, plt, read_sweep
from vaelab.reporting.tables import LATENTS, latent_table, main_S

DPI = 150
MARKERS, LINES = "osD^vP*Xph", ("-", "--", "-.", ":")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FIGURE_TITLES = {"stojanovic_fig5": "Figure 5 of the variance-loss paper: the 2-D manifolds learned by (a) elbo, "
                                    "(b) reinforce, (c) variance and (d) vargrad (`python sweep.py fig5`)"}


def styles(names):
    """A colour, marker and line style per estimator, fixed by its sorted name, so every plot agrees."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: dict(color=c, marker=m, linestyle=ls, markevery=0.1)
            for name, c, m, ls in zip(sorted(names), cycle(colours), cycle(MARKERS), cycle(LINES))}


def averaged(curves, runs, x, y):
    """Mean over runs of y against x, each run's curve interpolated onto the union of their x (within the
    shortest run's range, so the mean never extrapolates)."""
    per_run = [c.dropna(subset=[x, y]).sort_values(x) for _, c in curves[curves.run.isin(runs)].groupby("run")]
    per_run = [c for c in per_run if len(c)]
    if not per_run:
        return pd.Series(dtype=float)
    end = min(c[x].iloc[-1] for c in per_run)
    grid = np.unique(np.concatenate([c[x].to_numpy() for c in per_run]))
    grid = grid[grid <= end]
    return pd.Series(np.mean([np.interp(grid, c[x], c[y]) for c in per_run], axis=0), index=grid)


def legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def figure(title_of, kinds):
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.8), squeeze=False, dpi=DPI)
    for ax, kind in zip(axes[0], kinds):
        ax.set_title(title_of(kind))
    return fig, dict(zip(kinds, axes[0]))


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return small_png(path, path)


def small_png(source, path):
    """`source` written to `path` as a PNG of at most 256 colours (plots and grey digits need no more), at its dpi:
    a committed page's figures stay small."""
    with Image.open(source) as image:
        dpi = image.info.get("dpi")
        small = image.convert("RGB").quantize(256)
    small.save(path, optimize=True, **({"dpi": dpi} if dpi else {}))
    return Path(path)


def plot_curves(done, curves, kinds, S, x, y, xlabel, ylabel, path, logy=False):
    """y against x per latent kind (a panel each) at S: a line per estimator, the mean over its seeds."""
    style = styles(done[ESTIMATOR].unique())
    fig, axes = figure(lambda k: f"{k} latent, S={S}", kinds)
    for kind, ax in axes.items():
        rows = done[(done.latent == kind) & (done.S == S)]
        for loss, group in rows.groupby(ESTIMATOR):
            mean = averaged(curves, group.run, x, y)
            if len(mean):
                ax.plot(mean.index, mean.values, label=loss, **style[loss])
        ax.set(xlabel=xlabel, ylabel=ylabel, yscale="log" if logy else "linear")
        legend(ax)
    return save(fig, path)


def plot_against_S(done, kinds, path):
    """Final test ELBO against S, per latent kind, for each estimator run at more than one S (mean ± std)."""
    style = styles(done[ESTIMATOR].unique())
    fig, axes = figure(lambda k: f"{k} latent", kinds)
    for kind, ax in axes.items():
        rows = done[done.latent == kind]
        for loss, group in rows.groupby(ESTIMATOR):
            by_S = group.groupby("S")["test/elbo"]
            if by_S.ngroups > 1:
                mean = by_S.mean()
                ax.errorbar(mean.index, mean.values, yerr=by_S.std().fillna(0).values, capsize=3, label=loss,
                            **{**style[loss], "markevery": None})
        ax.set_xscale("log", base=2)
        sizes = sorted(rows.S.unique())
        ax.set_xticks(sizes, labels=[str(s) for s in sizes])
        ax.minorticks_off()
        ax.set(xlabel="S (samples per datum)", ylabel="test ELBO (nats)")
        legend(ax)
    return save(fig, path)


def all_curves(sweep_dir, done, columns):
    """Every done run's logged rows of `columns` against step (and time/elapsed), tagged with the run."""
    frames = []
    for run in done.run:
        logged = metrics(Path(sweep_dir) / run)
        present = [c for c in ("step", "time/elapsed", *columns) if c in logged]
        frames.append(logged[present].assign(run=run))
    return pd.concat(frames, ignore_index=True)


def at_time(curves, runs, horizon):
    """Mean over runs of the last val/elbo each had reached by `horizon` seconds of training."""
    values = []
    for _, c in curves[curves.run.isin(runs)].dropna(subset=["time/elapsed", "val/elbo"]).groupby("run"):
        reached = c[c["time/elapsed"] <= horizon]
        if len(reached):
            values.append(reached["val/elbo"].iloc[-1])
    return np.mean(values) if values else np.nan


def winners(done, curves, kind, S):
    """Sentences: the best estimator by test NLL (and ELBO) at S, and by val ELBO at equal wall-clock."""
    rows = done[(done.latent == kind) & (done.S == S)]
    if rows.empty:
        return []
    lines = []
    for metric, better, what in (("test/nll", "smallest", "test NLL"), ("test/elbo", "largest", "test ELBO")):
        if metric not in rows or rows[metric].isna().all():
            continue
        means = rows.groupby(ESTIMATOR)[metric].agg(["mean", "std"]).sort_values("mean", ascending=better == "smallest")
        best, runner = means.iloc[0], means.iloc[1] if len(means) > 1 else None
        line = f"the {better} {what} is **{means.index[0]}**'s, {best['mean']:.2f} ± {best['std']:.2f} nats"
        if runner is not None:
            line += f", then {means.index[1]}'s {runner['mean']:.2f} ± {runner['std']:.2f}"
        lines.append(line)
    if "time/elapsed" in curves:
        ends = curves[curves.run.isin(rows.run)].groupby("run")["time/elapsed"].max()
        finished = rows.assign(end=rows.run.map(ends)).groupby(ESTIMATOR).end.min()
        horizon = finished.min()
        reached = pd.Series({loss: at_time(curves, group.run, horizon) for loss, group in rows.groupby(ESTIMATOR)})
        reached = reached.dropna().sort_values(ascending=False)
        if len(reached):
            lines.append(f"at equal wall-clock ({horizon:.0f} s, when the fastest estimator, {finished.idxmin()}, had "
                         f"finished), the best val ELBO is **{reached.index[0]}**'s, {reached.iloc[0]:.2f} nats"
                         + (f", then {reached.index[1]}'s {reached.iloc[1]:.2f}" if len(reached) > 1 else ""))
    return lines


def mean_of(rows, loss, metric):
    values = rows.loc[rows[ESTIMATOR] == loss, metric] if metric in rows else pd.Series(dtype=float)
    return values.mean() if values.notna().any() else np.nan


def collapse(done, kind, S):
    """The variance loss against VarGrad on one latent kind: KL(q‖p), test ELBO and the verdict they give."""
    rows = done[(done.latent == kind) & (done.S == S)]
    kl_var, kl_vg = mean_of(rows, "variance", "test/kl"), mean_of(rows, "vargrad", "test/kl")
    if np.isnan(kl_var) or np.isnan(kl_vg):
        return None
    elbo_var, elbo_vg = mean_of(rows, "variance", "test/elbo"), mean_of(rows, "vargrad", "test/elbo")
    verdict = "its posterior has collapsed onto the prior" if kl_var < 0.1 * kl_vg else \
        "its posterior has not collapsed within this budget"
    return (f"{kind}: KL(q‖p) = {kl_var:.2f} nats under the variance loss against {kl_vg:.2f} under VarGrad, "
            f"test ELBO {elbo_var:.2f} against {elbo_vg:.2f}: {verdict}")


def vargrad_vs_reinforce(done, kind, S):
    rows = done[(done.latent == kind) & (done.S == S)]
    metric = "grad/encoder/variance"
    v_vg, v_rl = mean_of(rows, "vargrad", metric), mean_of(rows, "reinforce", metric)
    e_vg, e_rl = mean_of(rows, "vargrad", "test/elbo"), mean_of(rows, "reinforce", "test/elbo")
    if np.isnan(v_vg) or np.isnan(v_rl):
        return None
    return (f"{kind}: encoder gradient variance {v_vg:.3g} (VarGrad) against {v_rl:.3g} (REINFORCE-LOO), a ratio of "
            f"{v_vg / v_rl:.2f}; test ELBO {e_vg:.2f} against {e_rl:.2f}")


def discussion(done, curves, kinds, S):
    lines = ["## What the numbers say", "", f"### Which estimator wins (S={S})", ""]
    for kind in kinds:
        found = winners(done, curves, kind, S)
        if found:
            lines.append(f"- **{kind}**: " + "; ".join(found) + ".")
    found = [c for c in (collapse(done, kind, S) for kind in kinds) if c]
    if found:
        lines += ["", "### The variance loss", "",
                  "Trained through Var f alone, with f = log p(x|z) + log p(z) − log q(z|x), the decoder is pulled to "
                  "any point where f is constant in z. A decoder that ignores z with q(z|x) = p(z) is one "
                  "(f = log p(x) for every z, so Var f = 0) whatever p(x) is, so the loss does not tell it from a "
                  "good model; VarGrad trains the decoder by the ELBO instead.", ""]
        lines += [f"- {c}." for c in found]
    found = [c for c in (vargrad_vs_reinforce(done, kind, S) for kind in kinds) if c]
    if found:
        lines += ["", "### VarGrad and REINFORCE-LOO", "",
                  "With S draws, ∇ ½ Var f = (1/(S−1)) Σ_s (f_s − f̄) ∇ log q(z_s|x) and the leave-one-out "
                  "REINFORCE gradient (1/S) Σ_s (f_s − f̄₋ₛ) ∇ log q(z_s|x) are the same vector, since "
                  "f_s − f̄₋ₛ = S/(S−1) (f_s − f̄); measured on the same fixed batch:", ""]
        lines += [f"- {c}." for c in found]
    return lines


def headline(done, kinds, S):
    """The README's table: per latent kind, the estimators by test NLL at S, best first."""
    rows = []
    for kind in kinds:
        table = latent_table(done, kind, S)
        if len(table):
            best = table.iloc[0]
            rows.append({"latent": kind, f"best estimator (S={S})": best.estimator,
                         **{c: best[c] for c in table.columns if c.startswith("test ")},
                         "next": ", ".join(table.estimator.iloc[1:4])})
    return pd.DataFrame(rows)


def replace_between_markers(path, text):
    """Rewrite what lies between the results markers of `path`, if it has them; returns whether it did."""
    path = Path(path)
    if not path.exists():
        return False
    content = path.read_text()
    if BEGIN not in content or END not in content:
        return False
    head, rest = content.split(BEGIN, 1)
    path.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return True


def write_page(sweep_dir, markdown, readme=None, figures_made=(), panels=()):
    """Write the results page `markdown` and its PNGs (in a folder named after it) from the sweep in `sweep_dir`;
    rewrite `readme`'s headline table between the results markers if it has them. `figures_made`: PNGs made
    elsewhere (e.g. `python sweep.py fig5`'s manifolds), copied next to the page's own and shown after them.
    `panels`: sweep directories shown after the benchmark's tables (vaelab.reporting.panels). Returns the page's text."""
    sweep_dir, markdown = Path(sweep_dir), Path(markdown)
    runs, _ = read_sweep(sweep_dir)
    done = runs[runs.status == "done"]
    if done.empty:
        raise FileNotFoundError(f"no finished runs under {sweep_dir}")
    figures = markdown.with_suffix("")
    figures.mkdir(parents=True, exist_ok=True)
    S = main_S(done)
    kinds = [k for k in LATENTS if k in set(done.latent)]
    curves = all_curves(sweep_dir, done, ["val/elbo", "grad/encoder/variance"])
    plots = {
        "Validation ELBO against training step": plot_curves(
            done, curves, kinds, S, "step", "val/elbo", "training step", "val ELBO (nats)", figures / "val_elbo_vs_step.png"),
        "Validation ELBO against wall-clock time": plot_curves(
            done, curves, kinds, S, "time/elapsed", "val/elbo", "seconds of training", "val ELBO (nats)",
            figures / "val_elbo_vs_time.png"),
        "Test ELBO against S": plot_against_S(done, kinds, figures / "elbo_vs_S.png"),
        "Encoder gradient variance (tr Cov over 16 draws, fixed batch) against step": plot_curves(
            done, curves, kinds, S, "step", "grad/encoder/variance", "training step", "encoder grad variance",
            figures / "grad_variance_vs_step.png", logy=True),
    }
    for source in map(Path, figures_made):
        plots[FIGURE_TITLES.get(source.stem, source.stem)] = small_png(source, figures / source.name)
    command = " ".join(["python sweep.py report", str(sweep_dir), "--markdown", str(markdown),
                        *(f"--figure {f}" for f in figures_made), *(f"--panel {d}" for d in panels)])
    lines = ["# Results: which estimator for which latent", "", f"Generated by `{command}` from the runs of", "",
             *provenance(sweep_dir, runs, done)]
    for kind in kinds:
        lines += [f"## {kind.capitalize()} latent, S={S}", "", latent_table(done, kind, S).to_markdown(index=False), ""]
    lines += discussion(done, curves, kinds, S) + [""] + [line for d in panels for line in panel(d)] + ["## Plots", ""]
    for title, path in plots.items():
        lines += [f"### {title}", "", f"![{title}]({os.path.relpath(path, markdown.parent)})", ""]
    lines += unfinished(runs, "## Runs that did not finish")
    text = "\n".join(lines) + "\n"
    markdown.write_text(text)
    if readme is not None:
        target = os.path.relpath(markdown, Path(readme).parent)
        link = f"Test NLL and ELBO at S={S}, mean ± std over seeds; the whole comparison and how it was measured: " \
            f"[{target}]({target})."
        replace_between_markers(readme, headline(done, kinds, S).to_markdown(index=False) + "\n\n" + link)
    return text
