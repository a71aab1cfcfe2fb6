"""What vaelab relies on in Lightning beyond its documented API, in one place: its rule for the steps whose metrics
it writes, its trainer's logging interval set after construction, its CSVLogger's unopened writer and header, and
how its console is made to read cleanly (its own log handler, its advertisements, the warnings it raises that a
user cannot act on). tests/test_compat.py checks each against the installed Lightning, and pyproject.toml pins the
range it passed on."""

import logging
import warnings


def logs_this_step(trainer) -> bool:
    """Whether Lightning writes the metrics logged in this training step: every trainer.log_every_n_steps steps
    counted from one, and on the step at which training stops. Lightning's own rule (its logger connector's
    should_update_logs), computed from public fields; on the other steps self.log would only feed Lightning's
    result collection with values it never writes."""
    return (trainer.global_step + 1) % trainer.log_every_n_steps == 0 or trainer.should_stop


def set_log_interval(trainer, every_n_steps: int):
    """Log every `every_n_steps` steps from now on: Lightning reads trainer.log_every_n_steps at each step, so the
    interval chosen once the data are known (at setup) takes effect although the trainer was made without it."""
    trainer.log_every_n_steps = every_n_steps


def csv_writer_opened(logger) -> bool:
    """Whether a CSVLogger has made its writer (its `experiment`), which Lightning does on first use, deleting any
    metrics.csv already in its folder."""
    return logger._experiment is not None


def continue_csv(writer, header: list[str]):
    """Make a CSVLogger's writer append to a metrics.csv whose columns are `header`, as it would had it written the
    file itself: it rewrites the file only when a new column appears."""
    writer.metrics_keys = list(header)


ADVERTISEMENT = "💡 Tip:"   # how Lightning begins its tips for its own products (litlogger, litmodels)
UNACTIONABLE = (   # (message, module) of warnings raised inside Lightning that a vaelab user cannot act on
    # torch deprecated LeafSpec, which Lightning's own pytree copy still builds at every step
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", r"lightning\.pytorch\.utilities\._pytree"),
    # vaelab keeps two ModelCheckpoints on purpose (best.ckpt first, then last.ckpt), and tests the first's best
    (r'`\.test\(ckpt_path="best"\)` is called with Trainer configured with multiple `ModelCheckpoint`',
     r"lightning\.pytorch\.trainer\.connectors\.checkpoint_connector"),
)


class NoAdvertisement(logging.Filter):
    """Drops Lightning's tips for other products of its maker from its log."""

    def filter(self, record):
        return not str(record.msg).startswith(ADVERTISEMENT)


def quiet_lightning():
    """Each Lightning message once, in the application's format, with no advertisement, and no warning that a
    vaelab user cannot act on. Lightning's top package gives its logger a console handler of its own ("INFO: ...")
    and still lets records propagate: where the root logger already has handlers (Hydra's), that handler printed
    every message a second time, so it goes. Called once logging is configured, before training."""
    import lightning  # noqa: F401  (its handler is added on import)

    ours = logging.getLogger("lightning")
    if logging.getLogger().hasHandlers():
        for handler in [h for h in ours.handlers if type(h) is logging.StreamHandler]:
            ours.removeHandler(handler)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        found = logging.getLogger(name)
        if not any(isinstance(f, NoAdvertisement) for f in found.filters):
            found.addFilter(NoAdvertisement())
    for message, module in UNACTIONABLE:
        warnings.filterwarnings("ignore", message=message, module=module)
