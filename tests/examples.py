"""The example config files and the command lines their comments say they equal."""

from __future__ import annotations

import shlex
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"

#: The comment line before an example's equivalent command line.
MARK = "# The same as the command line:"


def example_command(name: str) -> list[str]:
    """The hub4com arguments written in example `name`'s comment (after MARK, one
    ``#   hub4com ...`` line and its indented continuations)."""
    lines = (EXAMPLES / name).read_text().splitlines()
    start = lines.index(MARK) + 1
    words: list[str] = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        words += shlex.split(line[1:])
    assert words[:1] == ["hub4com"], f"{name}: no command line after {MARK!r}"
    return words[1:]
