"""Errors. One base; `UsageError` ends start-up with one line, never a traceback."""

from __future__ import annotations

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "ArgSource", "HubError", "InUseError", "PortError", "UsageError"]

#: Exit status of every command for a bad command line, option value, address,
#: file or config (the convention of docopt, argparse and most Unix tools).
EXIT_USAGE = 2
#: Exit status when the hub could not start or run (a device or address in use, ...).
EXIT_FAILURE = 1


class ArgSource:
    """Where an argument came from: the command line, or a --load file and line."""

    __slots__ = ("file", "line", "loaded_by")

    def __init__(self, file: str | None = None, line: int | None = None, loaded_by: str | None = None):
        self.file = file
        self.line = line
        self.loaded_by = loaded_by

    def __str__(self) -> str:
        if self.line is None:
            return ""
        name = self.file or "standard input"
        return f" (file {name}, line {self.line}, loaded by '{self.loaded_by}')"


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class UsageError(HubError):
    """A bad argument, option value, address or file at start-up.

    ``str()`` is the one line shown to the user: the text, the argument, and
    for loaded arguments the file and line.
    """

    def __init__(self, arg: str | None, text: str, source: ArgSource | None = None):
        super().__init__(text)
        self.arg = arg
        self.text = text
        self.source = source

    def with_source(self, arg: str, source: ArgSource | None) -> UsageError:
        """Return this error attributed to `arg` from `source`, if it had none."""
        return type(self)(self.arg or arg, self.text, self.source or source)

    def __str__(self) -> str:
        where = f" in '{self.arg}'" if self.arg is not None else ""
        return f"{self.text}{where}{self.source or ''}"


class InUseError(UsageError):
    """What an argument names is in use (a busy device, a pty link another hub holds):
    the command line is right, the hub cannot start now (EXIT_FAILURE, not EXIT_USAGE)."""


class PortError(HubError):
    """An I/O failure at a driver boundary; the port is reported and retried."""

    def __init__(self, port: str, errno: int | None, text: str):
        super().__init__(text)
        self.port = port
        self.errno = errno
        self.text = text

    def __str__(self) -> str:
        return f"{self.port}: {self.text}"
