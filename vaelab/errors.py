"""The one error type for bad input, raised before any work starts."""


class ConfigError(ValueError):
    """A configuration value that cannot work: the message names the key, the value and what is accepted."""


def require(ok: bool, key: str, value, accepted: str):
    """Raise ConfigError naming `key`, its `value` and what is `accepted`, unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not accepted: {accepted}")


def refusal(exception: BaseException) -> ConfigError | None:
    """The ConfigError behind `exception` (itself or a cause: instantiate wraps what constructors raise), or None."""
    while exception is not None and not isinstance(exception, ConfigError):
        exception = exception.__cause__
    return exception
