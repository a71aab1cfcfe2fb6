"""The command line's overrides, checked before Hydra runs: each one read by Hydra's own override grammar, each
config-group option found among the group's files, and each key set found in the config the group choices compose.
A refusal is one line naming the override's key and value and what is accepted (how to quote a value that the
grammar cannot read; the nearest key by spelling), where Hydra would print several lines and exit 1."""

import difflib
import re

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf

from vaelab.errors import ConfigError, refused, said
from vaelab.paths import CONF
from vaelab.preflight import check_choices, group_options

VALUED_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "-c", "--cfg", "-p", "--package",
                "--experimental-rerun")   # Hydra's flags whose next argument is theirs, not an override
OTHER_CONFIG = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")
ABSENT = object()


def override_args(args: list[str]) -> list[str]:
    """The overrides among Hydra's command-line arguments: those that are neither a flag nor a flag's value."""
    return [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] not in VALUED_FLAGS)]


def hydra_quoted(key: str, value: str) -> str:
    """`key=value` as a shell argument that Hydra reads back as the string `value`: the value in Hydra's quotes (a
    quote inside escaped by a backslash, and the backslashes before a quote, or the closing one, doubled), the whole
    in the shell's double quotes."""
    quoted = re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\'" if m[2] else ""), value)
    text = f"{key}='{quoted}'"
    return '"' + re.sub(r'([\\"$`])', r"\\\1", text) + '"'


def parsed(args: list[str]) -> list[Override]:
    """The overrides, read by Hydra's grammar; one it cannot read is refused, showing how to quote its value."""
    parser = OverridesParser.create()
    overrides = []
    for arg in override_args(args):
        try:
            overrides += parser.parse_overrides([arg])
        except OverrideParseException as e:
            reason = str(e).strip().splitlines()[0]
            if "=" not in arg:
                raise ConfigError(f"{arg!r} is not accepted: an override, key=value ({reason})") from None
            key, value = arg.split("=", 1)
            raise refused(key.lstrip("+~"), value, f"a value Hydra's override grammar reads ({reason}); quote it, as "
                          f"{hydra_quoted(key, value)}") from None
    return overrides


def is_group(o: Override) -> bool:
    """Whether `o` chooses a config-group option (`loss=variance`, `net/activation=relu`) rather than sets a key."""
    return (CONF / o.key_or_group).is_dir() and not o.key_or_group.startswith("hydra")


def options(o: Override) -> list:
    """The options a group override chooses, sweeps expanded; each an option or a list of them (logger=[csv,wandb])."""
    if o.value_type == ValueType.GLOB_CHOICE_SWEEP:
        return o.value().filter(group_options(CONF, o.key_or_group))
    return list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]


def command_line_choices(overrides: list[Override]):
    """(group, option) for each config-group option named on the command line, sweeps expanded."""
    for o in overrides:
        if is_group(o) and not o.is_delete() and o.value_type != ValueType.GLOB_CHOICE_SWEEP:  # a glob picks existing ones
            for value in options(o):
                yield from ((o.key_or_group, str(v)) for v in (value if isinstance(value, list) else [value])
                            if v is not None and str(v) != "null")


def as_override(o: Override, value) -> str:
    """`o` with the single option `value` (one of a sweep's)."""
    text = f"[{','.join(map(str, value))}]" if isinstance(value, list) else "null" if value is None else str(value)
    return f"{o.get_key_element()}={text}" if not o.is_delete() else o.input_line


def reaches(o: Override, key: str) -> bool:
    """Whether the options of group override `o` can differ in dotted `key`: the group's own node, or an option
    file in the global package that sets the key's top node or pulls in another group's option."""
    top = key.split(".")[0]
    if (o.package or o.key_or_group).replace("/", ".").split(".")[0] == top:
        return True
    for path in (CONF / o.key_or_group).rglob("*.yaml"):
        node = OmegaConf.load(path)
        if ("@package _global_" in path.read_text() and top in node) or \
                any(not isinstance(entry, str) for entry in node.get("defaults", [])):
            return True
    return False


def variants(groups: list[Override], key: str) -> list[tuple[list[str], str]]:
    """(group overrides with one option each, the swept options among them): the first option of each group; then
    each further option of a sweep whose options can differ in `key`, the others at their first. Between them,
    every config of a sweep's jobs that can differ in `key`."""
    first = [as_override(o, options(o)[0]) if options(o) else o.input_line for o in groups]
    swept = [o.is_sweep_override() for o in groups]

    def label(chosen):
        return ", ".join(c for c, s in zip(chosen, swept, strict=True) if s)

    chosen = [first] + [first[:i] + [as_override(o, v)] + first[i + 1:] for i, o in enumerate(groups)
                        if o.is_sweep_override() and reaches(o, key) for v in options(o)[1:]]
    return [(c, label(c)) for c in chosen]


def missing(cfg: DictConfig, key: str) -> int | None:
    """The index of the first part of dotted `key` that `cfg` lacks, or None when `cfg` has the key."""
    parts = key.split(".")
    for i in range(len(parts)):
        if OmegaConf.select(cfg, ".".join(parts[: i + 1]), default=ABSENT, throw_on_resolution_failure=False) is ABSENT:
            return i
    return None


def unknown_key(cfg: DictConfig, o: Override, chosen: str = ""):
    """Refuse `o`'s key, absent from `cfg` (the config of the `chosen` options of a sweep): named with the nearest key
    there by spelling (a config group's name too, at the top), else with the keys there are."""
    parts, value = o.key_or_group.split("."), o.input_line.split("=", 1)[1]
    i = missing(cfg, o.key_or_group)
    node = ".".join(parts[:i]) or "the config"
    parent = OmegaConf.select(cfg, node) if i else cfg
    if isinstance(parent, DictConfig | ListConfig):
        keys = [str(k) for k in (parent.keys() if isinstance(parent, DictConfig) else range(len(parent)))]
        keys += [p.name for p in CONF.iterdir() if i == 0 and p.is_dir() and p.name not in keys and p.name != "hydra"]
        near = difflib.get_close_matches(parts[i], keys, n=1, cutoff=0.6)
        hint = f"did you mean {'.'.join([*parts[:i], near[0], *parts[i + 1:]])}={value}?" if near else \
            f"{node} has {', '.join(keys) or 'no keys'} (+{o.key_or_group}=... adds a key)"
    else:
        hint = f"{node} is {parent!r}, a value with no keys (+{o.key_or_group}=... adds a key)"
    raise refused(o.key_or_group, o.value() if not o.is_sweep_override() else value,
                  f"a key of the config{f' with {chosen}' if chosen else ''}, and {node} has no {parts[i]}; {hint}")


def composition(choices: list[str]) -> DictConfig:
    """train.yaml composed with the group overrides `choices`; refused in one line where Hydra cannot compose it."""
    try:
        return compose("train", overrides=choices)
    except HydraException as e:
        raise ConfigError(f"{' '.join(choices)} is not accepted: Hydra cannot compose the config from these options "
                          f"({said(e)})") from None


def check_keys(overrides: list[Override]):
    """Refuse an override that sets a key (not adds one: `+key=value`) absent from a config that the group choices
    compose: in a sweep, from that of any option (Hydra would fail at that job). Hydra's own keys are Hydra's to
    check; a top-level key of train.yaml needs no composition."""
    top = OmegaConf.load(CONF / "train.yaml")
    setting = [o for o in overrides if not (is_group(o) or o.is_add() or o.is_force_add() or o.is_delete())
               and not o.key_or_group.startswith("hydra") and o.key_or_group not in top]
    if not setting:
        return
    groups, composed = [o for o in overrides if is_group(o)], {}
    with initialize_config_dir(str(CONF), version_base="1.3"):
        for o in setting:
            for choices, chosen in variants(groups, o.key_or_group):
                if tuple(choices) not in composed:
                    composed[tuple(choices)] = composition(choices)
                if missing(composed[tuple(choices)], o.key_or_group) is not None:
                    unknown_key(composed[tuple(choices)], o, chosen)


def check_command_line(args: list[str]):
    """Refuse, before Hydra runs, an override Hydra cannot read, a group option without a config file and a key
    absent from the config (unless a flag names another config than vaelab's train.yaml). Raises ConfigError."""
    overrides = parsed(args)
    check_choices(CONF, command_line_choices(overrides))
    if not any(a.split("=", 1)[0] in OTHER_CONFIG for a in args):
        check_keys(overrides)
