"""Typed configs: every value is checked against the type its reader declares, before any work.

One mechanism for every node: a dataclass states the keys a reader takes and their types, and OmegaConf
validates the node against it as a structured config (`S=1.5` is no int, `lr=abc` no float). For the
top-level keys the dataclass is `Run`; for a `_target_` node (a data set, latent, loss, likelihood, network,
the trainer, a callback, a logger) it is made from the target's signature, its parameters and their type
hints. A key the reader does not take is refused, naming the nearest one it does (`trainer.max_epoch`:
did you mean `trainer.max_epochs`?). What a target reads besides its arguments (an environment variable) it checks
in a static `preflight()`, called with its node. Refusals raised by a constructor name its own parameter;
`under(key)` names them as config keys, the one place where library errors meet config keys.
"""

import collections.abc
import dataclasses
import difflib
import inspect
import logging
import re
import types
import typing
from contextlib import contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ValidationError

from vaelab.errors import refusal, refused, said

GROUPS = ("dataset", "likelihood", "latent", "loss", "net", "optimizer", "prior_optimizer", "scheduler", "trainer", "logger",
          "callbacks", "paths", "extras")
SWEEP_KEYS = ("grid", "figure")  # what a named sweep (vaelab/conf/sweep/) adds for sweep.py alone
SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.MutableSequence)
HYDRA_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


@dataclasses.dataclass
class Run:
    """The top-level keys of vaelab/conf/train.yaml and their types (what each means: vaelab/conf/train.yaml). The config
    groups' nodes are typed by their targets (`check_targets`)."""

    seed: int = 0
    S: int = 1
    lr: float = 1e-3
    eval_samples: int = 1
    nll_samples: int = 1000
    nll_chunk: int = 100
    compile: bool = False
    data_dir: Optional[str] = None  # noqa: UP045 - OmegaConf reads typing's Optional, not X | None
    skip_finished: bool = False
    nonfinite: str = "stop"
    resume: Optional[str] = None  # noqa: UP045
    tags: list[str] = dataclasses.field(default_factory=list)
    trusted_targets: list[str] = dataclasses.field(default_factory=list)


def structured_type(annotation):
    """The type OmegaConf checks for a parameter annotated `annotation`: int, float, bool, str, Path, an Enum,
    Optional or a list of those; Any (no check) for what a config value cannot be, or OmegaConf cannot check
    (a class, a callable, a union of several types)."""
    if annotation in (int, float, bool, str) or (isinstance(annotation, type) and issubclass(annotation, (Enum, Path))):
        return annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = structured_type(rest[0]) if len(rest) == 1 else Any
        return Any if inner is Any else Optional[inner]  # noqa: UP045
    if origin in SEQUENCES:
        item = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else Any
        return list[structured_type(item)]
    return Any


def describe(annotation) -> str:
    """What a value of a structured type is, in words."""
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path"}
    if annotation in words:
        return words[annotation]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return f"one of {', '.join(m.name for m in annotation)}"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return f"a list, each item {describe(args[0])}" if args[0] is not Any else "a list"
    if origin is typing.Union:
        return f"{describe(next(a for a in args if a is not type(None)))}, or null"
    return f"a {annotation}"


def signature_schema(target, given=()) -> tuple[type, bool]:
    """(dataclass of the parameters of `target` that a config can set, whether it takes any other keyword too).
    `given` names the parameters that code passes itself."""
    try:
        signature = inspect.signature(target, eval_str=True)
    except (NameError, TypeError, AttributeError):  # an annotation names what only type checkers import
        signature = inspect.signature(target)
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    fields = [(p.name, structured_type(p.annotation), dataclasses.field(default=MISSING))
              for p in signature.parameters.values() if p.kind in keyword and p.name not in given]
    open_ended = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    return dataclasses.make_dataclass(f"{getattr(target, '__name__', 'target')}Config", fields), open_ended


def required(target, given=()) -> list[str]:
    """The keyword parameters of `target` without a default, except those in `given` (that code passes itself)."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):   # a builtin without a signature
        return []
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.kind in keyword and p.default is p.empty and p.name not in given]


def check_values(values: dict, schema: type, prefix: str, reader: str, open_ended: bool = False):
    """Refuse a key of `values` that `schema` has no field for (unless `open_ended`), naming the nearest field,
    and a value that OmegaConf cannot take as its field's type. `prefix` is the node's config key."""
    fields = {f.name: f.type for f in dataclasses.fields(schema)}
    name = (lambda k: f"{prefix}.{k}") if prefix else str
    for key, value in values.items():
        if key not in fields and not open_ended:
            near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {name(near[0])}?" if near else f" ({', '.join(fields)})"
            raise refused(name(key), value, f"a key that {reader} reads{hint}")
    typed = OmegaConf.structured(schema)
    OmegaConf.set_struct(typed, False)
    try:
        OmegaConf.merge(typed, values)
    except ValidationError as e:
        key = re.match(r"[^.\[]+", e.full_key).group()
        raise refused(name(key), values[key], describe(fields[key])) from None


def check_run(cfg: DictConfig):
    """The top-level keys of a composed run config against `Run`; the groups' nodes are left to `check_targets`."""
    values = {key: cfg[key] for key in cfg if key not in GROUPS + SWEEP_KEYS}
    fields = [f.name for f in dataclasses.fields(Run)]
    unknown = [key for key in values if key not in fields]
    if unknown:
        near = difflib.get_close_matches(unknown[0], [*fields, *GROUPS], n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}?" if near else f"one of {', '.join([*fields, *GROUPS])}"
        raise refused(unknown[0], values[unknown[0]], f"a key that vaelab reads; {hint}")
    check_values(values, Run, "", "vaelab")


def plain(node):
    """A config node as Python values, interpolations resolved."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def targets(value) -> list:
    """The `_target_` nodes directly within `value`: itself, or its list items."""
    if isinstance(value, dict) and "_target_" in value:
        return [value]
    return [v for v in value if isinstance(v, dict) and "_target_" in v] if isinstance(value, list) else []


def check_target(node: dict, key: str, given=()):
    """Check a `_target_` node's keys and values against its target's signature, and so every `_target_` node
    within it. `given`: the parameters that code passes itself."""
    try:
        with quiet("hydra.utils", logging.CRITICAL + 1):  # the refusal below says it in one line
            target = get_object(node["_target_"])
    except Exception:  # noqa: BLE001 - Hydra raises several kinds for a path that names nothing
        raise refused(f"{key}._target_", node["_target_"], "an importable class or function") from None
    schema, open_ended = signature_schema(target, given)
    values = {k: v for k, v in node.items() if k not in HYDRA_KEYS}
    if not node.get("_partial_") and "_args_" not in node:   # a partial node's code passes the rest
        lacking = [name for name in required(target, given) if name not in values]
        if lacking:
            raise refused(f"{key}._target_", node["_target_"], f"a target given its required arguments; the node lacks "
                          f"{', '.join(lacking)} ({' '.join(f'+{key}.{name}=...' for name in lacking)})")
    for name, value in values.items():
        for inner in targets(value):
            check_target(inner, f"{key}.{name}")
    check_values(values, schema, key, node["_target_"], open_ended)
    preflight = inspect.getattr_static(target, "preflight", None)
    if isinstance(preflight, staticmethod | classmethod):   # what the target reads besides its arguments
        with named(key):
            target.preflight()


def check_targets(node, key: str):
    """Check `node` (the config at `key`): a `_target_` node against its target, else each of its `_target_`
    nodes (the callbacks and logger groups hold one a key)."""
    values = plain(node)
    if isinstance(values, dict) and "_target_" in values:
        check_target(values, key)
    elif isinstance(values, dict):
        for name, value in values.items():
            for inner in targets(value):
                check_target(inner, f"{key}.{name}")


def check_kwargs(node, key: str, target, given=()):
    """Check a node without a `_target_` (the net group's) as the keyword arguments that code passes to `target`."""
    check_target({"_target_": f"{target.__module__}.{target.__qualname__}", **plain(node)}, key, given)


@contextmanager
def named(key: str):
    """Within: a refusal raised by a constructor, naming its own parameter, names it as a key of config node `key`."""
    try:
        yield
    except Exception as e:
        found = refusal(e)
        if found is None:
            raise
        raise found.under(key) from e


@contextmanager
def under(key: str):
    """As `named`; and a node that Hydra cannot instantiate, its constructor raising TypeError, ImportError or
    AttributeError (an argument it cannot take, a module it cannot import), is refused naming the node (Hydra's
    `full_key`, within `key`)."""
    with named(key):
        try:
            yield
        except InstantiationException as e:
            if refusal(e) is not None or not isinstance(e.__cause__, TypeError | ImportError | AttributeError):
                raise
            target = re.search(r"target '([^']+)'", str(e))
            node = re.search(r"^full_key: (\S+)$", str(e), re.MULTILINE)
            raise refused(f"{node[1] if node else key}._target_", target[1] if target else None,
                          f"a target that builds from its node: it raised {said(e.__cause__)}") from e


@contextmanager
def quiet(logger: str, level: int = logging.WARNING):
    """Within: `logger` logs at `level` and above only."""
    log = logging.getLogger(logger)
    before = log.level
    log.setLevel(max(before, level))
    try:
        yield
    finally:
        log.setLevel(before)


def constructed(node, key: str, keys_named: bool = False, **kwargs):
    """instantiate(node, **kwargs), its refusals named as keys of `key` (or as they are, with `keys_named`: vaelab's
    callbacks name their config keys, `nonfinite` among them); where the target itself raises, the refusal names the
    key without which it accepts the node (Lightning's Trainer says `No supported gpu backend found!` for
    accelerator=gpu on a machine without one, naming no key)."""
    try:
        with nullcontext() if keys_named else named(key):
            return instantiate(node, **kwargs)
    except Exception as e:
        if refusal(e) is not None:
            raise
        error = e.__cause__ or e
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        values = plain(node)
        for name in [k for k in values if k not in HYDRA_KEYS]:
            try:
                instantiate({k: v for k, v in values.items() if k != name}, **kwargs)
            except Exception:  # noqa: BLE001 - this key is not the one; try the next
                continue
            raise refused(f"{key}.{name}", values[name], f"{values['_target_']} refuses it: {message}") from e
        raise refused(key, values, f"{values['_target_']} refuses it: {message}") from e
