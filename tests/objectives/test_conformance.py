"""Every `loss=` config against what its objective declares (vaelab/objectives/base.py), for each latent kind and
depth: refused exactly where it declares no support; its mean gradient that of its declared targets (by enumeration
on tiny models, by quadrature on the one-dimensional Gaussian toy), or not, where it declares itself biased; a
training step that reads nothing back from the device; and its parameters and state whole after a checkpoint.
A new loss file is covered by adding nothing. The targeted tests beside this one prove more where they exist
(variance orderings, biases that shrink with the temperature, options other than the defaults, pathwise
gradients through two continuous layers by quadrature)."""

import copy

import lightning.pytorch as L
import pytest
import torch

from tests.runs.test_host_sync import HostReads
from tests.toys import GaussianToy, X, assert_unbiased, discrepancy, tiny_vae
from vaelab.build import check_estimator, estimators
from vaelab.data import Digits
from vaelab.errors import ConfigError
from vaelab.hierarchical import Hierarchical
from vaelab.latents import Binary, Categorical, Gaussian
from vaelab.likelihoods import Bernoulli
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.objectives.base import LATENT_KINDS

CALLS, REPEATS = 40, 50   # gradient draws, each the mean of 50 estimates: the mean within 6 standard errors of the truth
BIASED_S = 64             # a biased estimator's samples a draw, so that its bias stands out of the noise
TOY_X = torch.tensor([[1.2], [-0.5]])
CASES = [(name, kind, depth) for name in sorted(estimators()) for kind in LATENT_KINDS for depth in (1, 2)]


def supports(objective, kind, depth):
    """Whether it trains `kind` at `depth` at some S: its declarations, and any condition of its own `problems`
    (elbo's closed-form KL, say)."""
    return any(not objective.problems(kind, S, depth) for S in range(1, 65))


def supported(exclude=()):
    return [case for case in CASES if supports(estimators()[case[0]][0], *case[1:]) and case[1:] not in exclude]


def least_S(objective, kind, depth, at_least=2):
    return next(S for S in range(at_least, 100) if not objective.problems(kind, S, depth))


def fresh(name):
    """A new copy of loss=`name`'s objective as a run builds it (estimators() holds one a process)."""
    return copy.deepcopy(estimators()[name][0])


@pytest.mark.parametrize("name,kind,depth", CASES)
def test_refused_exactly_where_it_declares_no_support(name, kind, depth):
    objective = estimators()[name][0]
    if supports(objective, kind, depth):
        check_estimator(name, objective, kind, least_S(objective, kind, depth, 1), depth)
        return
    for S in range(1, 9):
        with pytest.raises(ConfigError, match="is not supported|are not supported|in closed form") as refusal:
            check_estimator(name, objective, kind, S, depth)
        assert "\n" not in str(refusal.value)


# --- the mean gradient -----------------------------------------------------------------------------

def exact_model(kind, depth):
    """A model whose exact gradients are computable: enumerable (discrete, binary; 8 to 16 values of z, a learned
    prior) or, for continuous latents, the Gaussian toy (an encoder alone)."""
    torch.manual_seed(1)
    if kind == "continuous":
        return GaussianToy()
    if depth == 1:
        return tiny_vae(Categorical(D=2, K=3, learn_prior=True) if kind == "discrete" else Binary(D=3, learn_prior=True))
    widths = [1, 1] if kind == "discrete" else [2, 2]
    return tiny_vae(Hierarchical(widths, [kind] * 2, hidden=[3], classes=3, learn_prior=True))


def sides(vae):
    """The parameters trained by the encoder's signal (the encoder, and a hierarchy's inference conditionals) and by
    the decoder's (the rest: the decoder, the generative conditionals, a learned prior)."""
    encoder = list(vae.encoder.parameters()) + list(getattr(vae.latent, "inference", torch.nn.Module()).parameters())
    return {"encoder": encoder, "decoder": [p for p in vae.parameters() if all(p is not e for e in encoder)]}


def target(vae, declared, objective, S):
    """The exact value whose gradient the declared target names (vaelab.objectives.base.TARGETS)."""
    if isinstance(vae, GaussianToy):
        values = {"elbo": lambda: -vae.exact_elbo(TOY_X), "iwae": lambda: -vae.quadrature_iwae(TOY_X, S),
                  "variance": lambda: objective.scale * vae.quadrature_variance(TOY_X)}
    else:
        values = {"elbo": lambda: -exact.elbo(vae, X), "iwae": lambda: -exact.iwae(vae, X, S),
                  "variance": lambda: objective.scale * exact.variance(vae, X)}
    return values[declared]().mean()


@pytest.mark.parametrize("name,kind,depth", supported(exclude={("continuous", 2)}))  # test_hierarchical: quadrature
def test_the_mean_gradient_is_the_declared_one(name, kind, depth):
    """CALLS gradient draws, each on REPEATS copies of the data: the mean of REPEATS independent estimates, as every
    datum's samples are drawn independently of the others'."""
    objective, vae = fresh(name).double(), exact_model(kind, depth)
    x = TOY_X if isinstance(vae, GaussianToy) else X
    S = BIASED_S if objective.biased else least_S(objective, kind, depth)
    params = sides(vae)
    torch.manual_seed(2)
    draws = torch.stack([flat_grad(objective(vae, x.repeat(REPEATS, 1), S).loss, params["encoder"] + params["decoder"])
                         for _ in range(CALLS)])
    encoder = sum(p.numel() for p in params["encoder"])
    for part, found in (("encoder", draws[:, :encoder]), ("decoder", draws[:, encoder:])):
        if not params[part] or (objective.biased and part == "decoder"):
            continue
        truth = flat_grad(target(vae, getattr(objective, f"{part}_objective"), objective, S), params[part])
        if objective.biased:
            assert discrepancy(found, truth) > 6, "declared biased, found unbiased"
        else:
            assert_unbiased(found, truth, z=6)


# --- a training step and a checkpoint ----------------------------------------------------------------

def small_latent(kind, depth):
    if depth > 1:
        return Hierarchical([3, 3], [kind] * depth, classes=4)
    return {"continuous": Gaussian(4), "discrete": Categorical(D=3, K=4), "binary": Binary(D=6)}[kind]


def module_for(name, kind, depth, seed=0):
    torch.manual_seed(seed)
    objective = fresh(name)
    vae = VAE(small_latent(kind, depth), Bernoulli(), (8, 8), hidden=(16,))
    return VAEModule(vae, objective, S=least_S(objective, kind, depth, estimators()[name][1]))


@pytest.mark.parametrize("name,kind,depth", supported())
def test_a_training_step_reads_nothing_back_and_a_checkpoint_keeps_the_objective_whole(monkeypatch, tmp_path, name,
                                                                                        kind, depth):
    module = module_for(name, kind, depth)
    counter = HostReads(monkeypatch)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=0, log_every_n_steps=1000,
                        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[counter])
    trainer.fit(module, datamodule=Digits(batch_size=16))
    assert counter.reads == []
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    resumed = module_for(name, kind, depth, seed=1)
    resumed.load_state_dict(saved["state_dict"])
    state = module.objective.state_dict()
    assert state.keys() == resumed.objective.state_dict().keys()
    assert all(torch.equal(value, resumed.objective.state_dict()[key]) for key, value in state.items())
    own = list(module.objective.parameters())
    groups = saved["optimizer_states"][0]["param_groups"]
    assert len(groups) == 1 + bool(own)  # the objective's own parameters in a group of their own
    if own and module.objective.lr is not None:
        assert groups[1]["lr"] == module.objective.lr
    x = next(iter(trainer.datamodule.train_dataloader()))
    estimates = []
    for objective in (module.objective, resumed.objective):
        torch.manual_seed(3)
        estimates.append(objective(module.vae, x, module.S))
    assert torch.equal(estimates[0].loss, estimates[1].loss)   # nothing the estimate depends on was left behind
