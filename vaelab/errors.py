"""The one error type for bad input, raised before any work starts."""


class ConfigError(ValueError):
    """A configuration value that cannot work: the message names the key, the value and what is accepted.

    A library class names its own parameter (`val_size`); where its config node is mapped, `under("dataset")`
    names the config key (`dataset.val_size`)."""

    def __init__(self, message: str, key: str | None = None, value=None, accepted: str | None = None):
        super().__init__(message)
        self.key, self.value, self.accepted = key, value, accepted

    def under(self, prefix: str) -> "ConfigError":
        """The same refusal with its key named as a key of config node `prefix`; itself when already so named."""
        if self.key is None or self.key == prefix or self.key.startswith(f"{prefix}."):
            return self
        return refused(f"{prefix}.{self.key}", self.value, self.accepted)


def refused(key: str, value, accepted: str) -> ConfigError:
    """The ConfigError naming `key`, its `value` and what is `accepted`."""
    return ConfigError(f"{key}={value!r} is not accepted: {accepted}", key, value, accepted)


def require(ok: bool, key: str, value, accepted: str):
    """Raise ConfigError naming `key`, its `value` and what is `accepted`, unless `ok`."""
    if not ok:
        raise refused(key, value, accepted)


def refusal(exception: BaseException) -> ConfigError | None:
    """The ConfigError behind `exception` (itself or a cause: instantiate wraps what constructors raise), or None."""
    while exception is not None and not isinstance(exception, ConfigError):
        exception = exception.__cause__
    return exception


def said(error: BaseException) -> str:
    """What `error` says, in one line: its type and the first line of its message (cut at 200 characters)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__
