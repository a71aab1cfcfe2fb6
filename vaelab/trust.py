"""A saved config is code until proven otherwise: what a run folder's config.yaml may name and hold.

`resume=RUN` and `python -m vaelab.evaluate RUN` instantiate what RUN/config.yaml names; a folder handed over
by someone else could name any importable callable there (`torch.load` with `weights_only: false`, say).
Before anything is instantiated, every `_target_` in it must be one that vaelab's own config groups
(vaelab/conf/**/*.yaml) name, or one the user trusts explicitly (`trusted_targets=[...]` on resume, or a
`KEY._target_=TARGET` typed on the resuming command line itself, as a sweep's rerun repeats it; `--trust-target`
for evaluate), and its top-level keys must be this version's, of this version's types.
A folder is portable: paths saved under the folder it was started in are read as paths under where it lies.
"""

import dataclasses
from functools import cache
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from vaelab.errors import ConfigError
from vaelab.paths import CONF
from vaelab.schema import GROUPS, Run, check_run

OPTIONAL = ("trusted_targets", "likelihood", "scheduler")   # a command-line permission; groups whose default is none


def found_targets(tree, path: str = ""):
    """(key, target) of every `_target_` in nested dicts and lists, the key dotted (loss.reference._target_)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            name = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield name, value
            else:
                yield from found_targets(value, name)
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from found_targets(value, f"{path}.{i}")


@cache
def own_targets() -> frozenset:
    """Every `_target_` that a file of vaelab's config groups names."""
    return frozenset(t for path in CONF.rglob("*.yaml") for _, t in found_targets(yaml.safe_load(path.read_text())))


def check_saved_targets(saved: dict, key: str, value, trusted=(), remedy: str = ""):
    """Refuse `saved` (a run's config.yaml as plain values) if it names a `_target_` that is neither vaelab's own
    nor in `trusted`; the refusal names `key`=`value` (the folder's option), the config key and its target."""
    for name, target in found_targets(saved):
        if target not in own_targets() and target not in trusted:
            raise ConfigError(f"{key}={str(value)!r} is not accepted: its config.yaml sets {name}={target!r}, which is "
                              f"no target of vaelab's own configs, so nothing in the folder is loaded; {remedy}")


def check_saved_keys(saved: dict, key: str, value):
    """Refuse a saved config that does not fit this version of vaelab: a top-level key missing or unknown, or a
    value of another type than `Run` declares."""
    missing = [k for k in [f.name for f in dataclasses.fields(Run)] + list(GROUPS) if k not in saved and k not in OPTIONAL]
    try:
        if missing:
            raise ConfigError(f"the key {missing[0]} is missing")
        check_run(OmegaConf.create(saved))
    except ConfigError as e:
        raise ConfigError(f"{key}={str(value)!r} is not accepted: its config.yaml does not fit this version of vaelab "
                          f"({e}); the folder is left as it was") from None


def relocated(tree, old: str, new: str):
    """`tree` with every string under the folder `old` (a path the run saved) moved to the same place under `new`."""
    if isinstance(tree, dict):
        return {k: relocated(v, old, new) for k, v in tree.items()}
    if isinstance(tree, list):
        return [relocated(v, old, new) for v in tree]
    if isinstance(tree, str) and (tree == old or tree.startswith(old + "/")):
        return new + tree[len(old):]
    return tree


def saved_config(run_dir: Path, key: str, value, trusted=(), remedy: str = "") -> DictConfig:
    """RUN_DIR/config.yaml checked (targets, then keys and types) and its paths under the folder the run was
    started in (Hydra's record of it, where kept) moved to `run_dir`; nothing in it is instantiated or written."""
    try:
        saved = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    except Exception as e:  # noqa: BLE001 - YAML's and OmegaConf's errors for a file that is no config
        raise ConfigError(f"{key}={str(value)!r} is not accepted: its config.yaml cannot be read ({e})") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{key}={str(value)!r} is not accepted: its config.yaml holds no config")
    check_saved_targets(saved, key, value, trusted, remedy)
    check_saved_keys(saved, key, value)
    hydra = run_dir / ".hydra" / "hydra.yaml"
    started_in = OmegaConf.select(OmegaConf.load(hydra), "hydra.runtime.output_dir") if hydra.exists() else None
    if started_in:
        saved = relocated(saved, str(Path(started_in)), str(run_dir.absolute()))
    return OmegaConf.create(saved)
