"""The variance loss with each reference distribution r, against exact quantities by enumeration on the tiny model:
its gradient, the exact-posterior zero, the r = q identity, the decoder signals, and the refusals."""

import math

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.distributions import Bernoulli, Independent, OneHotCategorical

import sweep
from tests.runs.test_host_sync import reads_in_training
from tests.toys import X, assert_unbiased, tiny_vae
from vaelab.build import CONF, estimators
from vaelab.errors import ConfigError
from vaelab.latents import Binary, Categorical
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad, gradient_draws
from vaelab.objectives import VarianceLoss
from vaelab.references import Mixture, Posterior, Prior, Reference, Tempered

REFERENCES = {"posterior": {}, "prior": {}, "mixture": {"mix": 0.3}, "tempered": {"temperature": 2.5}}
LATENTS = {"categorical": lambda **kw: Categorical(D=2, K=3, **kw), "binary": lambda **kw: Binary(D=3, **kw)}


def vae_with(kind, learn_prior=False):
    """The tiny VAE; with a learned prior, set away from uniform so that prior draws differ from q's."""
    torch.manual_seed(1)
    vae = tiny_vae(LATENTS[kind](learn_prior=learn_prior))
    if learn_prior:
        with torch.no_grad():
            logits = vae.latent.prior_logits
            logits.copy_(torch.linspace(-1.0, 0.8, logits.numel()).reshape_as(logits))
    return vae


def reference_log_prob(vae, x, name, z):
    """log r(z|x) of each reference, written from its definition, shape [N, B] for z [N, 1, ...]."""
    q, prior = vae.posterior(x), vae.prior()
    if name == "posterior":
        return q.log_prob(z)
    if name == "prior":
        return prior.log_prob(z).expand(len(z), len(x))
    if name == "mixture":
        mix = REFERENCES["mixture"]["mix"]
        return torch.logaddexp(math.log(mix) + q.log_prob(z), math.log(1 - mix) + prior.log_prob(z))
    logits = q.base_dist.logits / REFERENCES["tempered"]["temperature"]
    base = Bernoulli(logits=logits) if vae.latent.kind == "binary" else OneHotCategorical(logits=logits)
    return Independent(base, 1).log_prob(z)


def exact_variance(vae, x, name, joint_detached=False):
    """Var_r[f] = E_r[f^2] - E_r[f]^2 with r held fixed, by enumeration, shape [B]."""
    z = vae.latent.support().unsqueeze(1)
    q = vae.posterior(x)
    log_joint = vae.log_likelihood(x, z) + vae.prior().log_prob(z)
    f = (log_joint.detach() if joint_detached else log_joint) - q.log_prob(z)
    r = reference_log_prob(vae, x, name, z).detach().exp()
    torch.testing.assert_close(r.sum(0), torch.ones(len(x), dtype=r.dtype))
    return (r * f**2).sum(0) - (r * f).sum(0) ** 2


def exact_grad(value, vae, part):
    return flat_grad(value, [p for p in getattr(vae, part).parameters() if p.requires_grad])


def batched_draws(objective, vae, S, part, term=None, draws=40, copies=100):
    """`draws` independent gradients, each the mean of `copies` independent estimates (X repeated `copies` times
    in one batch: the loss is a mean over the batch), [draws, P]."""
    return gradient_draws(objective, vae, X.repeat(copies, 1), S, draws, part, term)


def loss(reference, decoder="variance", scale=1.0):
    return VarianceLoss(decoder, scale, reference, **REFERENCES[reference]).double()


@pytest.mark.parametrize("kind", LATENTS)
@pytest.mark.parametrize("reference", REFERENCES)
def test_gradient_is_unbiased_for_the_exact_variance_under_the_reference(kind, reference):
    vae = vae_with(kind)
    torch.manual_seed(2)
    for part in ("encoder", "decoder"):
        truth = exact_grad(exact_variance(vae, X, reference).mean(), vae, part)
        assert truth.abs().max() > 1e-2
        assert_unbiased(batched_draws(loss(reference), vae, 3, part), truth)


@pytest.mark.parametrize("reference", ["prior", "mixture"])
def test_a_learned_prior_gets_the_gradient_of_the_variance_with_its_draws_detached(reference):
    """r = p (or a mixture with p) held fixed: the prior's parameters get grad Var_r f through log p(z) inside f
    only; a gradient through the draws (or through r) would move the mean away from this one."""
    vae = vae_with("binary", learn_prior=True)
    torch.manual_seed(3)
    truth = exact_grad(exact_variance(vae, X, reference).mean(), vae, "latent")
    assert_unbiased(batched_draws(loss(reference), vae, 3, "latent"), truth)


@pytest.mark.parametrize("kind", LATENTS)
@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("decoder", ["elbo", "iwae"])
def test_vargrad_encoder_gets_the_variance_and_the_decoder_draws_of_q(kind, reference, decoder):
    """decoder=elbo|iwae: the encoder gets 1/2 grad Var_r[log p(x, z) (detached) - log q(z|x)]; the decoder, whatever
    r is, the gradient of the ELBO or of the S-sample importance-weighted bound, from draws of q."""
    vae, S = vae_with(kind), 3
    torch.manual_seed(4)
    objective = loss(reference, decoder, 0.5)
    encoder = exact_grad(0.5 * exact_variance(vae, X, reference, joint_detached=True).mean(), vae, "encoder")
    bound = exact.elbo(vae, X) if decoder == "elbo" else exact.iwae(vae, X, S)
    decoder_truth = exact_grad(-bound.mean(), vae, "decoder")
    assert_unbiased(batched_draws(objective, vae, S, "encoder", term="encoder"), encoder)
    assert_unbiased(batched_draws(objective, vae, S, "decoder", term="decoder"), decoder_truth)


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("decoder", ["elbo", "iwae"])
def test_routed_terms_leave_the_other_side_untouched(reference, decoder):
    vae = vae_with("binary", learn_prior=True)
    estimate = loss(reference, decoder, 0.5)(vae, X, 4)
    torch.testing.assert_close(sum(estimate.terms.values()), estimate.loss)
    assert exact_grad(estimate.terms["encoder"], vae, "decoder").abs().max() == 0
    assert exact_grad(estimate.terms["encoder"], vae, "latent").abs().max() == 0
    assert exact_grad(estimate.terms["decoder"], vae, "encoder").abs().max() == 0
    assert exact_grad(estimate.terms["decoder"], vae, "latent").abs().max() > 0


def test_for_r_equal_to_q_the_encoder_gradient_is_twice_that_of_the_kl_to_the_true_posterior():
    """grad_phi Var_q[f] = -2 E_q[f grad log q] = 2 grad_phi KL(q || p(z|x)), KL = log p(x) - ELBO."""
    vae = vae_with("categorical")
    torch.manual_seed(5)
    truth = exact_grad(2 * (exact.log_marginal(vae, X) - exact.elbo(vae, X)).mean(), vae, "encoder")
    assert_unbiased(batched_draws(loss("posterior"), vae, 4, "encoder"), truth)


def exact_posterior_vae(kind):
    """A one-variable tiny VAE whose encoder is linear, solved so that q(z|x) is the exact posterior p(z|x) at each
    datum of X (the logits log p(x, z) of every z; binary: their difference)."""
    torch.manual_seed(1)
    vae = tiny_vae(Categorical(D=1, K=3) if kind == "categorical" else Binary(D=1))
    z = vae.latent.support().unsqueeze(1)
    with torch.no_grad():
        log_joint = (vae.log_likelihood(X, z) + vae.prior().log_prob(z)).T           # [B, N]
        logits = log_joint if kind == "categorical" else log_joint[:, 1:] - log_joint[:, :1]
        design = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
        solution = torch.linalg.lstsq(design, logits).solution
    vae.encoder = torch.nn.Linear(X.shape[1], logits.shape[1]).double()
    with torch.no_grad():
        vae.encoder.weight.copy_(solution[:-1].T)
        vae.encoder.bias.copy_(solution[-1])
    return vae


@pytest.mark.parametrize("kind", LATENTS)
@pytest.mark.parametrize("reference", REFERENCES)
def test_at_the_exact_posterior_the_loss_and_its_encoder_gradient_vanish(kind, reference):
    """q(z|x) = p(z|x) makes f = log p(x) for every z: the sample variance and its gradient are zero for every
    reference with full support, here all four."""
    vae = exact_posterior_vae(kind)
    torch.testing.assert_close(exact.elbo(vae, X), exact.log_marginal(vae, X))      # q is the exact posterior
    torch.manual_seed(6)
    for _ in range(5):
        estimate = loss(reference)(vae, X, 4)
        assert estimate.loss.abs() < 1e-20
        assert exact_grad(estimate.loss, vae, "encoder").abs().max() < 1e-9
    with torch.no_grad():
        vae.encoder.bias[0] += 0.5
    assert loss(reference)(vae, X, 4).loss > 1e-4                                    # away from it, it does not


def test_references_draw_detached_values_of_the_latent():
    vae = vae_with("categorical", learn_prior=True)
    support = vae.latent.support()
    for reference in (Posterior(), Prior(), Mixture(0.5), Tempered(0.5)):
        draws = reference.sample(vae, X, 5)
        assert draws.z.shape == (5, len(X), 2, 3) and not draws.z.requires_grad
        assert ((draws.z.unsqueeze(2) == support).flatten(-2).all(-1).sum(-1) == 1).all()


def test_the_mixture_draws_from_q_with_probability_mix():
    """Under a posterior and a prior that put their mass on different values, the share of draws on q's side is mix."""
    vae = vae_with("binary", learn_prior=True)
    with torch.no_grad():
        vae.latent.prior_logits.fill_(-30.0)                         # the prior: all zeros
        vae.encoder[-1].weight.zero_()
        vae.encoder[-1].bias.fill_(30.0)                             # q: all ones
    torch.manual_seed(7)
    z = Mixture(0.3).sample(vae, X, 20000).z
    assert (z.sum(-1) % 3 == 0).all()                                # each draw wholly from one of them
    assert abs(z[..., 0].mean().item() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / z[..., 0].numel())


def test_tempered_scales_a_gaussian_posterior():
    from vaelab.latents import Gaussian
    latent = Gaussian(2)
    q = latent.posterior(torch.tensor([[0.5, -1.0, 0.2, -0.4]]))
    tempered = latent.tempered(q, 3.0)
    torch.testing.assert_close(tempered.base_dist.scale, 3.0 * q.base_dist.scale)
    torch.testing.assert_close(tempered.base_dist.loc, q.base_dist.loc)


def test_a_reference_from_a_target_node_and_from_a_name():
    cfg = OmegaConf.load(CONF / "loss" / "variance.yaml")
    cfg.loss.reference = {"_target_": "vaelab.references.Mixture", "mix": 0.25}
    assert isinstance(instantiate(cfg.loss).reference, Mixture) and instantiate(cfg.loss).reference.mix == 0.25
    for name, kind in [("tempered", Tempered), ("prior", Prior), ("posterior", Posterior)]:
        cfg.loss.reference = name
        assert type(instantiate(cfg.loss).reference) is kind
    cfg.loss.reference, cfg.loss.temperature = "tempered", 3.0
    assert instantiate(cfg.loss).reference.temperature == 3.0


@pytest.mark.parametrize("arguments,named", [
    ({"reference": "posteriour"}, ["loss.reference='posteriour'", "one of posterior, prior, mixture, tempered"]),
    ({"reference": "mixture", "mix": 1.5}, ["loss.mix=1.5", "a probability in [0, 1]"]),
    ({"reference": "mixture", "mix": "half"}, ["loss.mix='half'", "a probability in [0, 1]"]),
    ({"reference": "tempered", "temperature": 0.0}, ["loss.temperature=0.0", "a positive temperature"]),
    ({"reference": "tempered", "temperature": -2}, ["loss.temperature=-2", "a positive temperature"]),
    ({"decoder": "vimco"}, ["loss.decoder='vimco'", "one of variance, elbo, iwae"]),
])
def test_bad_options_are_refused_naming_the_key(arguments, named):
    with pytest.raises(ConfigError) as error:
        VarianceLoss(**arguments)
    for text in named:
        assert text in str(error.value)


def test_a_reference_that_cannot_sample_the_latent_is_refused():
    class PosteriorOfBinary(Reference):
        name, latents = "binary-only", ("binary",)

    assert VarianceLoss(reference=Tempered(2.0)).problems("discrete", 4) == []
    assert VarianceLoss(reference=Tempered(2.0)).problems("hierarchical", 4) == [
        "latent=hierarchical is not supported (supported: continuous, discrete, binary)",
        "loss.reference=tempered cannot sample latent=hierarchical (it can: continuous, discrete, binary)"]
    assert VarianceLoss(reference=PosteriorOfBinary()).problems("discrete", 4) == [
        "loss.reference=binary-only cannot sample latent=discrete (it can: binary)"]


def test_train_refuses_a_bad_reference_before_any_work(train):
    result = train("loss=vargrad", "latent=binary", "loss.reference=mixtur", check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "vaelab: loss.reference='mixtur' is not accepted: one of posterior, prior, mixture, tempered" in result.stderr
    assert not train.dir.exists() or not any(train.dir.iterdir())    # no run folder left


@pytest.mark.parametrize("latent,options", [
    ("discrete", {"reference": "mixture"}), ("binary", {"reference": "prior", "decoder": "iwae"}),
    ("continuous", {"reference": "tempered"}),
])
def test_references_read_nothing_back_from_the_device(monkeypatch, latent, options):
    assert reads_in_training(monkeypatch, "variance", latent, nonfinite_every=1000, **options).reads == []


def test_every_cell_of_the_references_sweep_composes_and_can_train():
    """vaelab/conf/sweep/references.yaml: each latent x loss x reference of its grid builds, with the issue's mix 0.5 and
    temperature 2, S=4, and no objection from the objective."""
    from itertools import product

    from hydra import compose, initialize_config_dir

    spec = OmegaConf.load(CONF / "sweep" / "references.yaml")
    params = spec.hydra.sweeper.params
    assert params.seed == "0,1,2" and list(spec.grid.S) == [4]
    cells = list(product(spec.grid.latent, spec.grid.loss, params["loss.reference"].split(",")))
    assert len(cells) == 16
    assert sweep.grid(sweep.sweep_spec("references"), {}, estimators()) == {
        ("discrete", 4): ["variance", "vargrad"], ("binary", 4): ["variance", "vargrad"]}     # what sweep.py launches
    with initialize_config_dir(str(CONF), version_base="1.3"):
        for latent, name, reference in cells:
            cfg = compose("train", overrides=["+sweep=references", f"latent={latent}", f"loss={name}",
                                              f"loss.reference={reference}"])
            assert cfg.dataset._target_.endswith("BinarizedMNIST") and cfg.S == 4 and "diagnostics" in cfg.callbacks
            objective = instantiate(cfg.loss)
            assert objective.problems(instantiate(cfg.latent).kind, cfg.S) == []
            assert type(objective.reference).__name__.lower() == reference
            assert (objective.decoder, getattr(objective.reference, "mix", 0.5),
                    getattr(objective.reference, "temperature", 2.0)) == ({"variance": "variance"}.get(name, "elbo"), 0.5, 2.0)
