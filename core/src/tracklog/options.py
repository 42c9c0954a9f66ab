"""Plugin options: what a plugin can be configured with, declared once.

A plugin returns :class:`Option` objects from the ``register_options`` hook. Each is read
from the ``tracklog server`` flag ``--<plugin>-<name>``, else the environment variable
``TRACKLOG_<PLUGIN>_<NAME>``, else the further variables it lists (the names users already
have), else its default; the server checks every option when it starts, and a bad value
stops it with one line naming the flag or variable. ``tracklog plugins --json`` lists them.

:func:`env_value` is the typed reading of environment variables on its own, for settings
that are not options.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracklog import errors

#: The types an option may have.
TYPES = (int, float, bool, str)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One setting of a plugin.

    :param plugin: the prefix of its flag and variable, normally the plugin's entry-point
        name (``"artifacts-s3"``).
    :param name: the option's name in words joined by ``-`` (``"presigned-download-ttl"``).
    :param type: ``int``, ``float``, ``bool`` or ``str``.
    :param default: the value when nothing sets it.
    :param help: one line for ``tracklog server --help``.
    :param env: further environment variables read, in order, after
        ``TRACKLOG_<PLUGIN>_<NAME>``: the names a deployment may already use.
    :param minimum: the smallest value accepted, for numbers.
    """

    plugin: str
    name: str
    type: type
    default: Any
    help: str
    env: tuple[str, ...] = ()
    minimum: float | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise TypeError(f"option {self.name!r}: type must be one of int, float, bool, str")

    @property
    def flag(self) -> str:
        return f"--{self.plugin}-{self.name}".lower()

    @property
    def variable(self) -> str:
        return f"TRACKLOG_{self.plugin}_{self.name}".upper().replace("-", "_")

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.variable, *self.env)

    def read(self, env: Mapping[str, str] | None = None) -> Any:
        """The value the environment gives (the server puts its flags there first)."""
        return env_value(self.variables, self.type, self.default, minimum=self.minimum,
                         env=env)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.__name__, "default": self.default,
                "help": self.help, "flag": self.flag, "environment": list(self.variables)}


def env_value(
    names: str | Sequence[str],
    type: type,
    default: Any,
    *,
    minimum: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """The first of ``names`` set to a non-blank value in ``env`` (the process environment
    by default), as ``type`` (``int``, ``float``, ``bool``, ``str``); ``default`` when none
    is set. A value that does not convert, or is below ``minimum``, raises
    INVALID_PARAMETER_VALUE naming the variable."""
    env = os.environ if env is None else env
    for name in (names,) if isinstance(names, str) else names:
        raw = env.get(name, "").strip()
        if raw:
            return convert(raw, type, name, minimum=minimum)
    return default


def convert(raw: str, type: type, name: str, *, minimum: float | None = None) -> Any:
    """``raw`` as ``type``, or INVALID_PARAMETER_VALUE naming ``name`` (a variable or a
    flag)."""
    if type is str:
        return raw
    if type is bool:
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise errors.invalid(f"{name} must be true or false, got {raw!r}")
    kind = "an integer" if type is int else "a number"
    bound = f" of at least {minimum:g}" if minimum is not None else ""
    try:
        value = type(raw)
    except ValueError:
        raise errors.invalid(f"{name} must be {kind}{bound}, got {raw!r}") from None
    if value != value or (minimum is not None and value < minimum):  # NaN, or too small
        raise errors.invalid(f"{name} must be {kind}{bound}, got {raw!r}")
    return value
