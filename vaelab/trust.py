"""A saved config is code until proven otherwise: the `_target_`s that a run folder's config.yaml may name.

`resume=RUN` and `python -m vaelab.evaluate RUN` instantiate what RUN/config.yaml names; a folder handed over
by someone else could name any importable callable there (`torch.load` with `weights_only: false`, say).
Before anything is instantiated, every `_target_` in it must be one that vaelab's own config groups
(conf/**/*.yaml) name, or one the user trusts explicitly (`trusted_targets=[...]` on resume,
`--trust-target` for evaluate).
"""

from functools import cache

import yaml

from vaelab.build import CONF
from vaelab.errors import ConfigError


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
