"""What vaelab relies on in Lightning beyond its documented API, in one place: its rule for the steps whose metrics
it writes, its trainer's logging interval set after construction, and its CSVLogger's unopened writer and header.
tests/test_compat.py checks each against the installed Lightning, and pyproject.toml pins the range it passed on."""


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
