"""The documentation says what the code does: every message that README.md or docs/ quotes is what train.py
prints today for the command beside it, with the exit code beside it; every example command's config
composes; every relative link leads to a file (and heading); every repository path, `python -m` module and
`_target_=` named exists; every Python block is code that runs in the test suite.

A quoted message is a `vaelab: ...` span in a table row that also holds a `python train.py ...` command and
an exit code; in the message `...` stands for any text. The commands run in one Python process (torch and
Lightning load once), each as `python train.py` would run it: train.py executed as __main__ with the row's
arguments, its stderr and exit status captured. Without VAELAB_DATA_DIR a command that names no data set gets
dataset=digits, as in tests/conftest.py. RUN_DIR in a command is a finished one-epoch run of loss=vargrad.
"""

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
QUOTE = re.compile(r"`(vaelab: [^`]+)`")
COMMAND = re.compile(r"`python train\.py ([^`]*)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"`((?:vaelab|tests|conf|benchmarks|docs)/[\w./-]*|train\.py|sweep\.py)`")
MODULE = re.compile(r"python -m ([\w.]+)")
TARGET = re.compile(r"_target_=([\w.]+)")
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
EXAMPLE = re.compile(r"^ {4,}(?:\.venv/bin/)?(?:python (train\.py|sweep\.py)|make train ARGS=)(.*)$")
RUN_DIR = ["loss=vargrad", "dataset=digits", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
           "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "nll_samples=0"]

DRIVER = """
import contextlib, io, json, runpy, sys
from hydra.core.global_hydra import GlobalHydra
train, commands, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
results = []
for argv in commands:
    sys.argv, stderr, code = [train, *argv], io.StringIO(), 0
    with contextlib.redirect_stderr(stderr):
        try:
            runpy.run_path(train, run_name="__main__")
        except SystemExit as e:  # sys.exit("message") prints the message and exits 1, as the interpreter does
            code = 1 if isinstance(e.code, str) else (e.code or 0)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
    GlobalHydra.instance().clear()
    results.append({"code": code, "stderr": stderr.getvalue()})
open(out, "w").write(json.dumps(results))
"""


def lines():
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            yield f"{path.relative_to(ROOT)}:{number}", line


def quoted_rows():
    """(where, command arguments, exit code, message) for every line that quotes a `vaelab: ...` message."""
    rows = []
    for where, line in lines():
        for message in QUOTE.findall(line):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)]
            command = COMMAND.search(line)
            code = next((int(c) for c in cells if c.isdigit()), None)
            assert line.lstrip().startswith("|") and command and code is not None, (
                f"{where} quotes a message without a `python train.py ...` command and an exit code beside it")
            rows.append((where, shlex.split(command.group(1)), code, message.replace("\\|", "|")))
    return rows


def matches(message, stderr):
    pattern = ".*".join(re.escape(piece) for piece in message.split("..."))
    return any(re.fullmatch(pattern, line) for line in stderr.splitlines())


def test_every_quoted_message_is_what_the_command_prints(tmp_path):
    rows = quoted_rows()
    assert len(rows) >= 5, "the command tables of docs/reliability.md were not found"
    has_data = bool(os.environ.get("VAELAB_DATA_DIR"))
    commands, run_dir = [], tmp_path / "run"
    if any("RUN_DIR" in " ".join(args) for _, args, _, _ in rows):
        commands.append([f"hydra.run.dir={run_dir}", *RUN_DIR])
    for n, (_, args, _, _) in enumerate(rows):
        args = [a.replace("RUN_DIR", str(run_dir)) for a in args]
        data = [] if has_data or any(a.startswith("dataset=") for a in args) else ["dataset=digits"]
        commands.append([f"hydra.run.dir={tmp_path / str(n)}", *data, *args])
    out = tmp_path / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    driver = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT / "train.py"), json.dumps(commands), str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert driver.returncode == 0, driver.stderr[-3000:]
    results = json.loads(out.read_text())
    if len(commands) > len(rows):
        assert results.pop(0)["code"] == 0, "the run that RUN_DIR stands for failed"
    wrong = []
    for (where, args, code, message), result in zip(rows, results):
        stderr = result["stderr"].replace(str(run_dir), "RUN_DIR")
        if result["code"] != code or not matches(message, stderr):
            wrong.append(f"{where}: python train.py {' '.join(args)} exited {result['code']} printing\n{stderr[-1500:]}")
    assert not wrong, "\n\n".join(wrong)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def test_every_relative_link_leads_to_a_file_and_heading():
    broken = []
    for path in DOCS:
        for target in LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_every_path_module_and_target_named_exists():
    missing = []
    for where, line in lines():
        for name in REPO_PATH.findall(line):
            if not re.search(r"[A-Z*]", name) and not (ROOT / name).exists():  # NAME, DIR, *: placeholders
                missing.append(f"{where}: {name}")
        for module in MODULE.findall(line):
            if importlib.util.find_spec(module) is None:
                missing.append(f"{where}: python -m {module}")
        for target in [] if "is not accepted" in line else TARGET.findall(line):  # a refusal names a bad one
            module, _, attribute = target.rpartition(".")
            if not hasattr(importlib.import_module(module), attribute):
                missing.append(f"{where}: _target_={target}")
    assert not missing, missing


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_are_code_that_the_tests_run(path):
    sources = [p.read_text() for p in (ROOT / "tests").rglob("*.py")]
    for block in PYTHON_BLOCK.findall(path.read_text()):
        assert any(block in source for source in sources), f"{path.name}: a Python block found in no test file:\n{block}"


def sweep_overrides(words):
    """sweep.py's words but its own option `--dir DIR`: the overrides it hands to train.py."""
    kept, words = [], iter(words)
    for word in words:
        if word == "--dir":
            next(words)
        else:
            kept.append(word)
    return kept


def example_commands():
    """(where, overrides, sweep) of every train.py, sweep.py NAME and `make train` example in a code block:
    the overrides as one job of it would compose them (the first value of each sweep; sweep.py's grid as
    +sweep=NAME), and whether it is a sweep. Commands with placeholders (RUN_DIR, DIR: upper case) are left out."""
    found, pending = [], ""
    for where, line in lines():
        line = pending + line.strip() if pending else line
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending, match = "", EXAMPLE.match(line)
        if not match:
            continue
        script, rest = match.groups()
        args = shlex.split(rest.split("#")[0])
        if script is None:  # make train ARGS="...": one quoted word
            args = shlex.split(args[0])
        if script == "sweep.py":
            if args[0] == "report":
                continue
            args = [f"+sweep={args[0]}", *sweep_overrides(args[1:])]
        sweep = script == "sweep.py" or bool({"-m", "--multirun"} & set(args))
        args = [a for a in args if a not in ("-m", "--multirun")]
        if not any(re.search(r"\b[A-Z][A-Z_]+\b", a.split("=", 1)[-1]) for a in args):
            found.append((where, args, sweep))
    return found


def one_job(args):
    parser = OverridesParser.create()
    overrides = []
    for arg in args:
        override = parser.parse_override(arg)
        first = next(override.sweep_string_iterator()) if override.is_sweep_override() else None
        overrides.append(f"{override.get_key_element()}={first}" if first is not None else arg)
    return overrides


def test_every_example_command_composes_and_builds_its_estimator():
    """Each example's config composes, its loss and latent instantiate, and a single run's pair can train (a
    sweep's first job may be one it skips by design)."""
    examples = example_commands()
    assert len(examples) >= 6, examples
    failed = []
    with initialize_config_dir(str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        for where, args, sweep in examples:
            try:
                cfg = compose("train", overrides=one_job(args), return_hydra_config=True)
                objective, latent = instantiate(cfg.loss), instantiate(cfg.latent)
                assert sweep or not objective.problems(latent.kind, cfg.S), objective.problems(latent.kind, cfg.S)
            except Exception as e:  # noqa: BLE001 - Hydra's and the constructors' errors, reported together
                failed.append(f"{where}: {' '.join(args)}: {type(e).__name__}: {e}")
    assert not failed, "\n".join(failed)
