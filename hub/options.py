"""Plugin option parsing with docopt: the usage text is the parser.

A plugin's usage text has the form::

    Usage: <name> [options]

    Options:
      --baud=<b>   Baud rate, a number or c[urrent]. Default 19200.

Defaults are written in the description, never as docopt ``[default: ...]``,
so an option that was not given parses as None and the caller can tell which
options an argument set.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from docopt import DocoptExit, docopt

from .errors import UsageError

__all__ = ["MISSING_VALUE", "match_option", "option_names", "options_with_values", "parse_options"]

#: The start of the error for an option given without its value (--baud instead of --baud=9600).
MISSING_VALUE = "This option needs a value"

_OPTION_RE = re.compile(r"^\s*(--[A-Za-z0-9][\w-]*)", re.MULTILINE)
_OPTION_VALUE_RE = re.compile(r"^\s*(--[A-Za-z0-9][\w-]*)(=)?", re.MULTILINE)


def option_names(usage: str) -> frozenset[str]:
    """The long option names declared in the Options section of `usage`."""
    _, sep, section = usage.partition("Options:")
    if not sep:
        return frozenset()
    return frozenset(m.group(1).lower() for m in _OPTION_RE.finditer(section))


def options_with_values(usage: str) -> dict[str, bool]:
    """Each declared long option of `usage` -> whether it takes a value (``--baud=<b>``)."""
    _, sep, section = usage.partition("Options:")
    if not sep:
        return {}
    out: dict[str, bool] = {}
    for m in _OPTION_VALUE_RE.finditer(section):
        out.setdefault(m.group(1).lower(), bool(m.group(2)))
    return out


def match_option(arg: str, names: frozenset[str]) -> str | None:
    """The declared option `arg` names exactly (case-insensitive), or None."""
    name = arg.split("=", 1)[0].lower()
    return name if name in names else None


@functools.lru_cache(maxsize=4096)
def _docopt(usage: str, argv: tuple[str, ...]) -> dict[str, Any]:
    """docopt's parse, remembered: a config file gives every port of a driver the same
    options, and each parse reads the whole usage text (2-3 ms). Do not modify the result."""
    return dict(docopt(usage, argv=list(argv), default_help=False))


def parse_options(usage: str, argv: list[str], names: frozenset[str] | None = None) -> dict[str, object]:
    """Parse `argv` against `usage` and return {option: value} for options given.

    Option names are matched exactly and case-insensitively (hub4com style), not
    by docopt's abbreviation rule. Raises UsageError naming the bad argument.
    """
    if names is None:
        names = option_names(usage)
    normalised = []
    seen: set[str] = set()
    for arg in argv:
        name = match_option(arg, names)
        if name is None:
            raise UsageError(arg, "Unknown option")
        if name in seen:
            raise UsageError(arg, "Duplicated option")
        seen.add(name)
        value = arg[len(name) :]
        normalised.append(name + value)
    try:
        parsed = _docopt(usage, tuple(normalised))
    except DocoptExit:
        # docopt only says "usage"; find the argument it choked on.
        for arg, norm in zip(argv, normalised, strict=True):
            try:
                docopt(usage, argv=[norm], default_help=False)
            except DocoptExit:
                if "=" not in arg:
                    name = match_option(arg, names)
                    raise UsageError(arg, f"{MISSING_VALUE}: write {name}=<value>") from None
                raise UsageError(arg, "Invalid option value") from None
        raise UsageError(" ".join(argv), "Duplicated or conflicting options") from None
    return {k: v for k, v in parsed.items() if v is not None and v is not False and k.startswith("--")}
