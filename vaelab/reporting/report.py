"""Read every run of a sweep (sweep.py or `train.py -m`) into tables, and write its comparison report:
results.csv (a row per run), summary.md (mean +/- std over seeds) and plots (curves with a band over seeds)."""

import itertools
from pathlib import Path

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from vaelab.errors import ConfigError
from vaelab.lifecycle import read_status, status_of
from vaelab.reporting.style import DPI, plt, styles
from vaelab.reporting.style import panels as row_of_panels

SEED, ESTIMATOR = "seed", "loss"
SECONDS_PER_EPOCH = "seconds_per_epoch"


def run_dirs(sweep_dir):
    """Every job directory of a sweep: those holding Hydra's `.hydra/` record."""
    return sorted(p.parent.parent for p in Path(sweep_dir).rglob(".hydra/hydra.yaml"))


def read_yaml(path):
    return yaml.safe_load(Path(path).read_text())


def config_keys(run_dir):
    """The run's choices (loss, latent, dataset, ...), top-level values (S, seed, lr, ...) and overrides."""
    hydra_dir = run_dir / ".hydra"
    hydra = read_yaml(hydra_dir / "hydra.yaml")["hydra"]
    choices = hydra["runtime"]["choices"]
    ignored = hydra["job"]["config"]["override_dirname"]["exclude_keys"]   # what does not tell runs apart
    keys = {group: str(choice) for group, choice in choices.items() if not group.startswith("hydra/")}
    keys.update({k: v for k, v in read_yaml(hydra_dir / "config.yaml").items() if not isinstance(v, (dict, list))})
    keys.update({k: v for k, v in override_keys(read_yaml(hydra_dir / "overrides.yaml")).items() if k not in keys})
    return {k: v for k, v in keys.items() if k not in ignored}


def override_keys(overrides) -> dict:
    """key -> value of "key=value" overrides; a list or mapping (net.hidden=[16]) stays as written, a table cell."""
    keys = {}
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        loaded = yaml.safe_load(value)
        keys[key] = value if isinstance(loaded, (list, dict)) else loaded
    return keys


def planned_jobs(sweep_dir) -> list[list[str]] | None:
    """Every job's overrides, as Hydra's basic sweeper expands the sweep recorded in SWEEP_DIR/multirun.yaml (its
    sweeper params, then the command line's overrides, a key given again replacing the earlier), or None where the
    sweep is not recorded or another sweeper (Optuna) chooses its jobs as it goes."""
    path = Path(sweep_dir) / "multirun.yaml"
    if not path.exists():
        return None
    hydra = read_yaml(path)["hydra"]
    if not hydra["sweeper"]["_target_"].endswith("BasicSweeper"):
        return None
    params = [f"{k}={v}" for k, v in (hydra["sweeper"].get("params") or {}).items()]
    by_key = {}
    for override in OverridesParser.create().parse_overrides(params + list(hydra["overrides"]["task"])):
        key = override.get_key_element()
        values = override.sweep_string_iterator() if override.is_sweep_override() else [override.get_value_element_as_str()]
        by_key[key] = [f"{key}={v}" for v in values]
    return [list(job) for job in itertools.product(*by_key.values())]


def metrics(run_dir):
    """Lightning's CSVLogger record of the run (one row per logging step), or None."""
    path = run_dir / "csv" / "metrics.csv"
    return pd.read_csv(path) if path.exists() else None


def final_metrics(logged):
    """Each metric's last logged value, and wall-clock seconds per epoch (validation included)."""
    final = logged.drop(columns=["epoch", "step"], errors="ignore").ffill().iloc[-1].dropna().to_dict()
    if "time/elapsed" in logged:
        last = logged.dropna(subset=["time/elapsed"]).iloc[-1]
        final[SECONDS_PER_EPOCH] = last["time/elapsed"] / (last["epoch"] + 1)
    return final


def reason(run_dir):
    """Why a run failed, was interrupted or was skipped, from its status.json."""
    return (read_status(run_dir) or {}).get("error") or ""


def never_started(sweep_dir, started) -> list[dict]:
    """A row for each planned job of the sweep that has no folder (status "missing"), named by its overrides."""
    found = {frozenset(read_yaml(run_dir / ".hydra" / "overrides.yaml")) for run_dir in started}
    return [{"run": ",".join(job), "status": "missing", "error": "", **override_keys(job)}
            for job in planned_jobs(sweep_dir) or [] if frozenset(job) not in found]


def read_sweep(sweep_dir):
    """(runs, curves): a row per run (config keys, status, error, final metrics), jobs that never started included;
    validation curves of every run."""
    rows, curves = [], []
    started = run_dirs(sweep_dir)
    for run_dir in started:
        name, state = str(run_dir.relative_to(sweep_dir)), status_of(run_dir)
        row = {"run": name, "status": state, "error": reason(run_dir), **config_keys(run_dir)}
        logged = metrics(run_dir)
        if logged is not None and state == "done":
            row.update(final_metrics(logged))
            if "val/elbo" in logged:
                columns = [c for c in ("step", "val/elbo", "time/elapsed") if c in logged]
                curves.append(logged.dropna(subset=["val/elbo"])[columns].assign(run=name))
        rows.append(row)
    runs = pd.DataFrame(rows + never_started(sweep_dir, started))
    curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=["run", "step", "val/elbo"])
    return runs, curves


def compared_keys(runs):
    """What a row of the summary stands for: the estimator, S and any other key that varies, except the seed."""
    config = [c for c in runs.columns if "/" not in c    # metrics are named like val/elbo
              and c not in ("run", "status", "error", SEED, ESTIMATOR, "S", SECONDS_PER_EPOCH)]
    varying = [c for c in config if runs[c].astype(str).nunique() > 1]
    return [ESTIMATOR, "S"] + varying


def summary_metrics(runs):
    """Final test metrics (elbo, nll, ...), diagnostics (gradient variance, ...) and seconds per epoch, if measured."""
    return [c for c in runs.columns if c.startswith(("test/", "grad/")) or c == SECONDS_PER_EPOCH]


def summary_table(runs):
    """Mean +/- std over seeds of every summary metric, per estimator and S (and any other varying key)."""
    done = runs[runs.status == "done"]
    keys, measured = compared_keys(runs), summary_metrics(runs)
    if done.empty or not measured:
        return pd.DataFrame(columns=keys)
    groups = done.groupby(keys, dropna=False)
    table = groups[measured].agg(lambda v: f"{v.mean():.4g} ± {v.std():.2g}" if v.count() > 1 else f"{v.mean():.4g}")
    return table.assign(seeds=groups.size()).reset_index()


def write_summary(runs, path):
    counts = runs.status.value_counts().to_dict()
    lines = [f"# Sweep summary: {len(runs)} runs", "",
             ", ".join(f"{n} {state}" for state, n in counts.items()), "",
             "Final metrics, mean ± std over seeds (std with ddof 1; a lone seed shows its value).", "",
             summary_table(runs).to_markdown(index=False), ""]
    for state, title in (("failed", "Failed runs"), ("interrupted", "Interrupted runs (resume them)"),
                         ("skipped", "Skipped runs (invalid combinations)"),
                         ("running", "Runs still running (their process holds the run's lock)"),
                         ("died", "Runs that died (their process is gone: run the sweep again to continue them)"),
                         ("missing", "Runs that never started")):
        listed = runs[runs.status == state]
        if not listed.empty:
            lines += [f"## {title}", ""] + [f"- `{r.run}`: {r.error}" if r.error else f"- `{r.run}`"
                                          for r in listed.itertuples()] + [""]
    Path(path).write_text("\n".join(lines))


def panels(runs):
    """The runs split into the figure's panels: one per combination of compared keys other than the estimator."""
    keys = [k for k in compared_keys(runs) if k != ESTIMATOR]
    done = runs[runs.status == "done"]
    return [(", ".join(f"{k}={v}" for k, v in zip(keys, values)), group)
            for values, group in done.groupby(keys, dropna=False)]


def band(ax, x, mean, std, label, style):
    ax.plot(x, mean, label=label, markersize=4, **style)
    ax.fill_between(x, mean - std.fillna(0), mean + std.fillna(0), alpha=0.25)


def plot_curves(runs, curves, x, xlabel, path):
    """val/elbo against `x` (step or time/elapsed), a curve per estimator: the mean over seeds, a band of +/- 1 std."""
    split = panels(runs)
    if x not in curves or not split:
        return
    fig, axes = row_of_panels(len(split), DPI)
    style = styles(runs[ESTIMATOR].unique())
    for ax, (title, group) in zip(axes, split):
        for loss, members in group.groupby(ESTIMATOR):
            per_step = curves[curves.run.isin(members.run)].groupby("step")
            band(ax, per_step[x].mean(), per_step["val/elbo"].mean(), per_step["val/elbo"].std(), loss, style[loss])
        ax.set(title=title, xlabel=xlabel, ylabel="val elbo (nats)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_final_vs_samples(runs, path):
    """Final test elbo (val elbo where untested) against S, a line per estimator, error bars of +/- 1 std over seeds."""
    done = runs[runs.status == "done"]
    metric = next((m for m in ("test/elbo", "val/elbo") if m in done), None)
    if metric is None or done.empty:
        return
    keys = [k for k in compared_keys(runs) if k not in (ESTIMATOR, "S")]
    split = list(done.groupby(keys, dropna=False)) if keys else [((), done)]
    fig, axes = row_of_panels(len(split), DPI)
    style = styles(done[ESTIMATOR].unique())
    for ax, (values, group) in zip(axes, split):
        for loss, members in group.groupby(ESTIMATOR):
            by_S = members.groupby("S")[metric]
            ax.errorbar(by_S.mean().index, by_S.mean(), yerr=by_S.std().fillna(0), capsize=3, label=loss,
                        **{**style[loss], "markevery": None})
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(group.S.unique()), labels=[str(S) for S in sorted(group.S.unique())], minor=False)
        ax.minorticks_off()
        ax.set(xlabel="S (samples per datum)", ylabel=f"final {metric} (nats)",
               title=", ".join(f"{k}={v}" for k, v in zip(keys, values if isinstance(values, tuple) else (values,))))
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def write_report(sweep_dir):
    """Write results.csv, summary.md and the comparison plots into `sweep_dir`; returns the runs table."""
    sweep_dir = Path(sweep_dir)
    runs, curves = read_sweep(sweep_dir) if sweep_dir.is_dir() else (pd.DataFrame(), None)
    if runs.empty:
        raise ConfigError(f"report={str(sweep_dir)!r} is not accepted: a sweep's folder, holding its multirun.yaml "
                          "or run folders (with .hydra/); this holds neither")
    runs.to_csv(sweep_dir / "results.csv", index=False)
    write_summary(runs, sweep_dir / "summary.md")
    plot_curves(runs, curves, "step", "training step", sweep_dir / "val_elbo_vs_step.png")
    plot_curves(runs, curves, "time/elapsed", "wall-clock seconds", sweep_dir / "val_elbo_vs_time.png")
    plot_final_vs_samples(runs, sweep_dir / "final_elbo_vs_S.png")
    return runs
