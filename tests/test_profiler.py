"""The no-op profiler and the module's direct record of Lightning's hook names: no cost, the same behaviour."""

import lightning.pytorch as L
import torch
from torch import nn

from tests.toys import tiny_vae
from vaelab.latents import Gaussian
from vaelab.module import VAEModule
from vaelab.objectives import ELBO
from vaelab.profiler import Unprofiled


class Recording(VAEModule):
    def training_step(self, x, batch_idx):
        self.seen = self._current_fx_name
        return super().training_step(x, batch_idx)


def test_unprofiled_hands_out_one_shared_context_that_nests():
    profiler = Unprofiled()
    assert profiler.profile("outer") is profiler.profile("inner")   # nothing built per hook call
    with profiler.profile("outer"), profiler.profile("inner"):
        pass
    assert profiler.summary() == ""


def test_the_module_records_lightnings_hook_names_and_still_registers_modules():
    module = Recording(tiny_vae(Gaussian(2)), ELBO())
    data = torch.utils.data.DataLoader(torch.rand(8, 4, dtype=torch.float64).round(), batch_size=4)
    L.Trainer(max_steps=2, profiler=Unprofiled(), logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(module, data)
    assert module.seen == "training_step" and module._current_fx_name is None
    module.extra = nn.Linear(1, 1)
    assert "extra" in module._modules and "_current_fx_name" not in module._modules
