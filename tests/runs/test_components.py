"""A user's own component (a `_target_` node) is built and called once on a tiny batch before any work: one that
breaks the contract, lacks a required argument or cannot be built, is refused in one line naming its node, with
exit status 2 and no run folder left."""

import pytest

from tests.runs.test_refusals import assert_refused, train_here  # noqa: F401 - the fixture

VARGRAD = ["loss=vargrad", "latent=binary", "latent.D=3", "S=4"]
REFUSED = [
    ([*VARGRAD, "+loss.reference._target_=tests.faulty.BatchFirstReference"],
     "loss.reference='tests.faulty.BatchFirstReference' is not accepted: draws z of shape [S, B, ...] = [4, 5, 3] "
     "from sample(vae, x, S) (got [5, 4, 3])"),
    ([*VARGRAD, "+loss.reference._target_=tests.faulty.NoSample"],
     "loss.reference='tests.faulty.NoSample' is not accepted: a reference whose sample(vae, x, S) runs: it raised "
     "NotImplementedError"),
    ([*VARGRAD, "+loss.reference._target_=tests.faulty.NeedsWidth"],
     "loss.reference._target_='tests.faulty.NeedsWidth' is not accepted: a target given its required arguments; the node "
     "lacks width (+loss.reference.width=...)"),
    ([*VARGRAD, "+loss.reference._target_=tests.faulty.BadWidth"],
     "loss.reference._target_='tests.faulty.BadWidth' is not accepted: a target that builds from its node: it raised "
     "TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
    (["loss._target_=tests.faulty.NeedsModule"],
     "loss._target_='tests.faulty.NeedsModule' is not accepted: a target that builds from its node: it raised "
     "ModuleNotFoundError: No module named 'vaelab_nowhere'"),
    (["+callbacks.mine._target_=tests.faulty.NeedsWidth"],
     "callbacks.mine._target_='tests.faulty.NeedsWidth' is not accepted: a target given its required arguments; the node "
     "lacks width (+callbacks.mine.width=...)"),
    (["+logger.mine._target_=tests.faulty.NeedsWidth"],
     "logger.mine._target_='tests.faulty.NeedsWidth' is not accepted: a target given its required arguments; the node "
     "lacks width (+logger.mine.width=...)"),
    (["loss._target_=tests.faulty.NoElbo"],
     "loss._target_='tests.faulty.NoElbo' is not accepted: an objective returning vaelab.objectives.Estimate with a "
     "scalar loss and the ELBO of each datum, shape [B] = [2] (got Tensor)"),
]


@pytest.mark.parametrize("overrides,line", REFUSED, ids=["draws [B, S]", "no sample", "a reference lacking an argument",
                                                         "a reference raising TypeError", "an objective raising ImportError",
                                                         "a callback lacking an argument", "a logger lacking an argument",
                                                         "no Estimate"])
def test_a_user_component_that_breaks_the_contract_is_refused_before_work(train_here, overrides, line):  # noqa: F811
    assert_refused(train_here(*overrides), train_here.dir, line)
