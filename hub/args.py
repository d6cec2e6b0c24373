"""Command-line expansion and small parsers (spec 1.1, 1.2, 1.4, 1.7).

`expand` replaces every --load=... argument, recursively, by the arguments it
loads, each remembering its file and line for error messages. The quoting
rules are hub4com's: a double quote toggles quoted mode and is removed, a
backslash right before a quote makes it literal.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TextIO

from .errors import ArgSource, UsageError

__all__ = [
    "LOAD_DEPTH_LIMIT",
    "Arg",
    "expand",
    "is_option",
    "option_value",
    "parse_port_list",
    "split_filter_args",
    "split_quoted",
    "unquote",
]

#: hub4com checks depth > 256, so 257 levels are possible; we allow exactly that.
LOAD_DEPTH_LIMIT = 256

_PARAM_RE = re.compile(r"%%(\d+)%%")


@dataclass(frozen=True, slots=True)
class Arg:
    """One expanded argument and where it came from."""

    text: str
    source: ArgSource | None = None

    def error(self, text: str, arg: str | None = None) -> UsageError:
        return UsageError(self.text if arg is None else arg, text, self.source)


def is_option(text: str) -> bool:
    return text.startswith("--")


def option_value(text: str, name: str) -> str | None:
    """The value of `text` if it is option `name` ("--route="), matched case-insensitively."""
    if text[: len(name)].lower() == name:
        return text[len(name) :]
    return None


def split_quoted(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on `sep` outside double quotes; quotes are kept (see unquote)."""
    parts: list[str] = []
    start = 0
    quoted = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == '"':
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == sep and not quoted and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def unquote(text: str) -> str:
    """Remove quote characters; a backslash before a quote makes it literal."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == '"':
            out.append('"')
            i += 2
            continue
        if c != '"':
            out.append(c)
        i += 1
    return "".join(out)


def split_filter_args(text: str) -> list[str]:
    """Split --create-filter <Args> into tokens on spaces, honouring quotes."""
    tokens: list[str] = []
    cur: list[str] = []
    have = False
    quoted = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == '"':
            cur.append('"')
            have = True
            i += 2
            continue
        if c == '"':
            quoted = not quoted
            have = True
        elif c.isspace() and not quoted:
            if have:
                tokens.append("".join(cur))
                cur = []
                have = False
        else:
            cur.append(c)
            have = True
        i += 1
    if have:
        tokens.append("".join(cur))
    return tokens


def _load_lines(arg: Arg, value: str, depth: int, stdin: TextIO) -> list[Arg]:
    # split_quoted keeps quotes, so a ':' or ',' inside quotes does not split.
    pieces = split_quoted(value, ":", 1)
    head = pieces[0]
    params_text = pieces[1] if len(pieces) > 1 else None
    fields = [unquote(f) for f in split_quoted(head, ",")]
    path = fields[0] if fields else ""
    begin = fields[1] if len(fields) > 1 else ""
    end = fields[2] if len(fields) > 2 else ""
    params = [path] + (
        [unquote(p) for p in split_quoted(params_text, ",")] if params_text is not None else []
    )
    if path:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise arg.error(f"Can't open file {path}: {exc.strerror or exc}") from None
    else:
        lines = stdin.read().splitlines() if not stdin.closed else []

    # hub4com turns a parameter that was not given into an empty string, so a
    # forgotten one silently drops a line ("%%2%%") or changes it ("*%%2%%"
    # becomes "*"). We refuse it instead, naming the file, the line and the
    # reference; a parameter given as empty ("a,,c") still substitutes as "".
    missing: list[str] = []

    def subst(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if i < len(params):
            return params[i]
        missing.append(m.group(0))
        return ""

    out: list[Arg] = []
    started = not begin
    for lineno, raw in enumerate(lines, 1):
        missing.clear()
        line = _PARAM_RE.sub(subst, raw).strip()
        if not started:
            started = bool(line) and line == begin
            continue
        if end and line == end:
            break
        if raw.lstrip().startswith("#"):
            continue
        source = ArgSource(path or None, lineno, arg.text)
        if missing:
            given = len(params) - 1
            plural = "" if given == 1 else "s"
            text = f"Parameter {missing[0]} is not given ({given} parameter{plural} after ':')"
            raise UsageError(raw.strip(), text, source)
        if not line or line.startswith("#"):
            continue
        out.extend(_expand_one(Arg(line, source), depth + 1, stdin))
    if not started:
        where = f"file {path}" if path else "standard input"
        raise arg.error(f"The begin line '{begin}' is not in {where}")
    return out


def _expand_one(arg: Arg, depth: int, stdin: TextIO) -> list[Arg]:
    value = option_value(arg.text, "--load=")
    if value is None:
        return [arg]
    if depth > LOAD_DEPTH_LIMIT:
        raise arg.error("Too many recursive options --load=")
    return _load_lines(arg, value, depth, stdin)


def expand(argv: list[str] | list[Arg], stdin: TextIO | None = None, depth: int = 0) -> list[Arg]:
    """Expand --load options recursively. Raises UsageError naming the argument."""
    stdin = stdin if stdin is not None else sys.stdin
    out: list[Arg] = []
    for a in argv:
        arg = a if isinstance(a, Arg) else Arg(a)
        out.extend(_expand_one(arg, depth, stdin))
    return out


def parse_port_list(text: str, nports: int, allow_all: bool = True) -> list[int]:
    """Parse a comma-separated port list ("0,2", "All"); raises UsageError(item, ...)."""
    ports: list[int] = []
    for item in text.split(","):
        item_s = item.strip()
        if allow_all and item_s.lower() == "all":
            ports.extend(range(nports))
            continue
        try:
            i = int(item_s, 10)
        except ValueError:
            raise UsageError(None, f"Invalid port {item_s!r}") from None
        if not 0 <= i < nports:
            given = f"ports 0 to {nports - 1}" if nports > 1 else "only port 0"
            raise UsageError(None, f"There is no port {i}: the command line gives {given}")
        ports.append(i)
    return ports
