"""Overrides that Hydra cannot read, and keys the config does not have, are refused before Hydra runs: exit code 2,
one line naming the key, the value and what is meant (the nearest key; how to quote the value), no run folder.
Sweeps, appended keys and Hydra's own overrides pass as before."""

import subprocess

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.runs.test_refusals import assert_refused, train_here  # noqa: F401 - the fixture
from vaelab.errors import ConfigError
from vaelab.overrides import check_command_line, hydra_quoted

REFUSED = [
    (["los=variance"], "los='variance' is not accepted: a key of the config, and the config has no los; did you mean "
                       "loss=variance?"),
    (["trainer.max_step=5"], "trainer.max_step=5 is not accepted: a key of the config, and trainer has no max_step; did "
                             "you mean trainer.max_steps=5?"),
    (["traner.max_steps=5"], "traner.max_steps=5 is not accepted: a key of the config, and the config has no traner; did "
                             "you mean trainer.max_steps=5?"),
    (["hydra.mode=MULTIRUN", "loss=elbo,vimco", "loss.baselin=x"],
     "loss.baselin='x' is not accepted: a key of the config with loss=elbo, and loss has no baselin; loss has _target_, "
     "analytic_kl (+loss.baselin=... adds a key)"),
    (["resume=/tmp/a=b"], "resume='/tmp/a=b' is not accepted: a value Hydra's override grammar reads (mismatched input "
                          "'=' expecting <EOF>); quote it, as \"resume='/tmp/a=b'\""),
    (["loss"], "'loss' is not accepted: an override, key=value (Error parsing override 'loss')"),
]


@pytest.mark.parametrize("overrides,line", REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_an_unreadable_override_or_an_unknown_key_is_refused_in_one_line(train_here, overrides, line):  # noqa: F811
    assert_refused(train_here(*overrides), train_here.dir, line)
    assert not (train_here.dir / "multirun").exists()


def test_a_run_folder_that_hydra_cannot_read_is_refused_and_not_made(train_here):  # noqa: F811
    folder = train_here.dir / "x y(1)"
    result = train_here(f"hydra.run.dir={folder}")
    assert_refused(result, train_here.dir, f"hydra.run.dir='{folder}' is not accepted: a value Hydra's override grammar "
                                           f"reads (mismatched input '(' expecting <EOF>); quote it, as "
                                           f"\"hydra.run.dir='{folder}'\"")
    assert not folder.exists()


def test_the_refusal_ends_the_process_with_exit_status_2(train):
    result = train("los=variance", check=False)
    assert_refused(result, train.dir, REFUSED[0][1])


@pytest.mark.parametrize("value", ["/tmp/a=b", "/tmp/x y(1)", "it's", 'say "hi"', "$HOME/a\\b", "a\\'b", "a\\", "[1,2", "`x`"])
def test_the_quoting_shown_reads_back_as_the_value(value):
    arg = subprocess.run(["bash", "-c", f"printf %s {hydra_quoted('resume', value)}"], capture_output=True, text=True,
                         check=True).stdout   # as the shell passes it on
    [override] = OverridesParser.create().parse_overrides([arg])
    assert (override.key_or_group, override.value()) == ("resume", value)


@pytest.mark.parametrize("args", [
    ["-m", "loss=elbo,vimco", "lr=1e-3,1e-2"],
    ["-m", "loss=vargrad,variance", "loss.reference=prior"],   # a key that each option of the sweep has
    ["-m", "loss=glob(va*)", "loss.reference=prior"],
    ["+foo.bar=1", "++optimizer.lr=-1", "+trainer.max_epoch=5"],   # appended keys: checked by their readers later
    ["hydra/launcher=joblib", "hydra.job.chdir=false", "hydra.run.dir='/tmp/x y(1)'"],
    ["--cfg", "job", "experiment=kingma2014", "trainer.max_steps=3", "net.hidden=[8]"],
    ["logger=[csv,tensorboard]", "logger.tensorboard.name=a", "callbacks.nonfinite.every_n_steps=2"],
    ["loss=vargrad", "+loss.reference._target_=x.Y", "~scheduler"],
    ["--multirun", "+sweep=estimators", "skip_finished=true", "hydra.sweep.subdir='${short_name:${hydra:job.override_dirname}}'",
     "latent=discrete", "S=2,8", "loss=vimco,vargrad", "trainer.max_epochs=1"],   # as sweep.py runs it
], ids=lambda args: " ".join(args))
def test_sweeps_appends_and_hydras_own_overrides_pass(args):
    check_command_line(args)


def test_a_key_under_a_plain_value_is_refused_naming_the_value():
    with pytest.raises(ConfigError, match=r"loss.reference._target_='x.Y' is not accepted: a key of the config, and "
                                          r"loss.reference has no _target_; loss.reference is 'posterior', a value with no "
                                          r"keys \(\+loss.reference._target_=... adds a key\)"):
        check_command_line(["loss=vargrad", "loss.reference._target_=x.Y"])


@pytest.mark.parametrize("sweep,lacking", [("loss=variance,vimco", "loss=vimco"), ("loss=glob(v*)", "loss=vimco"),
                                           ("loss=elbo,variance", "loss=elbo")])
def test_a_key_absent_from_an_option_of_a_sweep_is_refused_naming_the_option(sweep, lacking):
    """Hydra would run the jobs before the option's, then fail at its job in several lines."""
    with pytest.raises(ConfigError, match=rf"loss.reference='prior' is not accepted: a key of the config with {lacking}, "
                                          r"and loss has no reference"):
        check_command_line(["-m", sweep, "loss.reference=prior"])


def test_group_options_that_hydra_cannot_compose_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^\+loss=elbo is not accepted: Hydra cannot compose the config from these options "
                                          r"\(ConfigCompositionException: loss appears more than once in the final defaults "
                                          r"list\)$"):
        check_command_line(["+loss=elbo", "trainer.max_steps=3"])
