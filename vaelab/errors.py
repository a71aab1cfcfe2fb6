"""The one error type for bad input, raised before any work starts."""


class ConfigError(ValueError):
    """A configuration value that cannot work: the message names the key, the value and what is accepted."""


def require(ok: bool, key: str, value, accepted: str):
    """Raise ConfigError naming `key`, its `value` and what is `accepted`, unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not accepted: {accepted}")


def config_error(error: BaseException | None):
    """The ConfigError behind `error` (Hydra's instantiate wraps one raised in a constructor), or None."""
    while error is not None and not isinstance(error, ConfigError):
        error = error.__cause__
    return error
