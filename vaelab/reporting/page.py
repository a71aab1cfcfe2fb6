"""The results page (docs/results.md) of a benchmark sweep, generated from its run records: a table per latent
kind (mean ± std over seeds), comparison plots, the measured discussion and how the numbers were made.

    python sweep.py report SWEEP_DIR --markdown docs/results.md

Every number on the page is read from the runs (vaelab.reporting.report loads them); the sentences of the
discussion are templates whose numbers, winners and verdicts the data fill in.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from PIL import Image

from vaelab.paths import SWEEPS
from vaelab.reporting.panels import heading, latents_in, panel
from vaelab.reporting.provenance import provenance, sweep_name, unfinished
from vaelab.reporting.report import ESTIMATOR, metrics, read_sweep
from vaelab.reporting.style import PAGE_DPI as DPI
from vaelab.reporting.style import panels, plt, styles
from vaelab.reporting.tables import COLUMNS, LATENTS, latent_table, main_S
from vaelab.reporting.templates import sweep_text

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
OFF_SCALE = 5   # median absolute deviations below the median: a curve drawn off scale
EVALUATIONS = ("eval/train_elbo", "eval/test_bound")   # a panel's curves against step, where its runs logged them


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
        ax.legend()


def figure(title_of, kinds):
    fig, axes = panels(len(kinds))
    for ax, kind in zip(axes, kinds):
        ax.set_title(title_of(kind))
    return fig, dict(zip(kinds, axes))


def figure_title(png):
    """A figure's caption on the page: the `caption` of the sweep whose grid draws it (vaelab/conf/sweep/*.yaml's
    grid.figure), or its file name."""
    for path in sorted(SWEEPS.glob("*.yaml")):
        grid = OmegaConf.load(path).get("grid") or {}
        if grid.get("figure") == Path(png).name and grid.get("caption"):
            return grid.caption
    return Path(png).stem


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


def off_scale(finals):
    """The curves whose last value lies so far below the others' that they would squash them (a collapsed run at
    −542 nats beside learners at −170): more than OFF_SCALE median absolute deviations of the last values, and a
    tenth of their median's size, under their median. A name's series of last values in, the names out."""
    finals = finals.dropna()
    if len(finals) < 3:
        return []
    centre = finals.median()
    spread = max(OFF_SCALE * (finals - centre).abs().median(), 0.1 * abs(centre))
    return sorted(finals.index[finals < centre - spread])


def draw_curves(ax, means, style, scaled):
    """A line per estimator of `means` ({name: series against x}); with `scaled`, the y axis spans only the curves
    that are not off scale, and each off-scale one is named with its last value in the legend and marked by an
    arrow and its value at the panel's foot, where it runs out."""
    away = off_scale(pd.Series({name: mean.iloc[-1] for name, mean in means.items()})) if scaled else []
    for name, mean in means.items():
        label = f"{name} (off scale: {mean.iloc[-1]:.1f})" if name in away else name
        ax.plot(mean.index, mean.values, label=label, **style[name])
    if away:
        shown = pd.concat([mean for name, mean in means.items() if name not in away])
        low, high = shown.min(), shown.max()
        margin = 0.05 * (high - low) or 1.0
        ax.set_ylim(low - margin, high + margin)
        foot = ax.get_xaxis_transform()    # x in data, y in axes fraction
        for name in away:
            mean = means[name]
            ax.annotate(f"{name} {mean.iloc[-1]:.1f} ↓", xy=(mean.index[-1], 0), xycoords=foot, xytext=(0, 8),
                        textcoords="offset points", ha="right", va="bottom", color=style[name]["color"])
    return away


def plot_curves(done, curves, kinds, S, x, y, xlabel, ylabel, path, logy=False):
    """y against x per latent kind (a panel each) at S: a line per estimator, the mean over its seeds; on a linear
    axis, scaled to the estimators that learn (draw_curves)."""
    style = styles(done[ESTIMATOR].unique())
    fig, axes = figure(lambda k: f"{k} latent, S={S}", kinds)
    for kind, ax in axes.items():
        rows = done[(done.latent == kind) & (done.S == S)]
        means = {loss: averaged(curves, group.run, x, y) for loss, group in rows.groupby(ESTIMATOR)}
        draw_curves(ax, {loss: mean for loss, mean in means.items() if len(mean)}, style, scaled=not logy)
        ax.set(xlabel=xlabel, ylabel=ylabel, yscale="log" if logy else "linear")
        legend(ax)
    return save(fig, path)


def panel_markers(panel_dir):
    """The comments that bound a panel's section on the page, named after its sweep's folder."""
    name = Path(panel_dir).name
    return f"<!-- panel {name}:begin -->", f"<!-- panel {name}:end -->"


def panel_section(panel_dir, markdown) -> list:
    """A panel's section of the page `markdown`, between its markers: the command that writes it alone, its tables and
    findings (vaelab.reporting.panels) and its evaluation curves (PNGs beside the page's)."""
    begin, end = panel_markers(panel_dir)
    lines = [begin, *panel(panel_dir)]
    lines[3:3] = [f"Written by `python sweep.py report {panel_dir} --into {markdown}`.", ""]
    figures = Path(markdown).with_suffix("")
    figures.mkdir(parents=True, exist_ok=True)
    for title, path in eval_plots(panel_dir, figures).items():
        lines += [f"### {title}", "", f"![{title}]({os.path.relpath(path, Path(markdown).parent)})", ""]
    return lines + [end, ""]


def write_section(panel_dir, markdown) -> str:
    """Rewrite the panel's section of an existing page `markdown` in place, or add it before the page's plots, and
    leave every other line as it was: a protocol's long runs join the page without its benchmark being run again.
    Returns the page's text."""
    markdown = Path(markdown)
    content = markdown.read_text()
    section = "\n".join(panel_section(panel_dir, markdown)) + "\n"
    begin, end = panel_markers(panel_dir)
    if begin in content and end in content:
        head, rest = content.split(begin, 1)
        text = head + section + rest.split(end + "\n", 1)[1].removeprefix("\n")
    else:
        head, plots, rest = content.partition("\n## Plots\n")
        text = head + "\n" + section + plots.lstrip("\n") + rest if plots else content + "\n" + section
    markdown.write_text(text)
    return text


def eval_plots(sweep_dir, figures) -> dict:
    """{title: PNG} of a panel sweep's evaluation curves against step, one per `eval/` metric its runs logged (the
    DisARM protocol's training ELBO and test bound, vaelab.callbacks.bounds); {} for a sweep that logged none. Each
    PNG is named after the sweep's folder, so that two panels of one sweep keep their own."""
    runs, _ = read_sweep(sweep_dir)
    done = runs[runs.status == "done"]
    name = sweep_name(sweep_dir, done) or Path(sweep_dir).name
    shown = heading(name, sweep_dir, name)
    plots = {}
    for metric in [m for m in EVALUATIONS if m in done]:
        curves = all_curves(sweep_dir, done, [metric])
        label = COLUMNS[metric][0]
        plots[f"{shown}: {label} against training step"] = plot_curves(
            done, curves, latents_in(done), main_S(done), "step", metric, "training step", label,
            figures / f"{Path(sweep_dir).name}_{metric.split('/')[1]}_vs_step.png")
    return plots


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


def discussion(done, curves, kinds, S, study):
    """The winners at S per latent kind, then the study's own findings (its template's lines, `study`)."""
    lines = ["## What the numbers say", "", f"### Which estimator wins (S={S})", ""]
    for kind in kinds:
        found = winners(done, curves, kind, S)
        if found:
            lines.append(f"- **{kind}**: " + "; ".join(found) + ".")
    return lines + (["", *study] if study else [])


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
        plots[figure_title(source)] = small_png(source, figures / source.name)
    command = " ".join(["python sweep.py report", str(sweep_dir), "--markdown", str(markdown),
                        *([f"--readme {readme}"] if readme is not None else []),
                        *(f"--figure {f}" for f in figures_made), *(f"--panel {d}" for d in panels)])
    lines = ["# Results: which estimator for which latent", "", f"Generated by `{command}` from the runs of", "",
             *provenance(sweep_dir, runs, done)]
    for kind in kinds:
        lines += [f"## {kind.capitalize()} latent, S={S}", "", latent_table(done, kind, S).to_markdown(index=False), ""]
    _, study = sweep_text(sweep_name(sweep_dir, done), sweep_dir, done, latents=kinds, S=S)
    lines += discussion(done, curves, kinds, S, study) + [""] + [line for d in panels for line in panel_section(d, markdown)]
    lines += ["## Plots", ""]
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
