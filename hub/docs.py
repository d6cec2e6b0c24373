"""The reference pages in docs/reference, made from the usage texts.

Every page holds exactly what a command's ``--help`` (or ``hub4com
--help=<name>``) prints, so the reference cannot drift from the options the
commands parse: the usage texts are the single source. Run from the
repository's root:

    python -m hub.docs            write docs/reference (and remove stale pages)
    python -m hub.docs --check    exit 1, naming each page that differs

The tests run the check.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

from .commands import COMMANDS
from .main import print_help, print_module_help
from .registry import DRIVERS, FILTERS, Registry

__all__ = ["COMMAND_MODULES", "DEFAULT_DIR", "check", "main", "pages", "write"]

#: Where the pages go, relative to the repository's root.
DEFAULT_DIR = Path("docs/reference")

#: The module whose main() each command runs (as in pyproject's [project.scripts]).
COMMAND_MODULES = {
    "com2tcp-rfc2217": "hub.commands.com2tcp_rfc2217",
    "gps-share": "hub.commands.gps_share",
    "com2tcp": "hub.commands.com2tcp",
    "com2tcp-esc": "hub.commands.com2tcp_esc",
    "multiplexer": "hub.commands.multiplexer",
    "hub4com-tap": "hub.commands.tap",
}

_NOTICE = (
    "<!-- Made by `python -m hub.docs` from the usage text, which is also what parses the"
    " options: edit that text, not this page. -->"
)


def _captured(write: Callable[[io.StringIO], object]) -> str:
    out = io.StringIO()
    write(out)
    return out.getvalue().rstrip() + "\n"


def _module_help(registry: Registry, name: str) -> str:
    """What `hub4com --help=<name>` prints."""
    out = io.StringIO()
    print_module_help(registry, name, out)
    return out.getvalue().rstrip() + "\n"


def _command_help(module: str) -> str:
    """What `<command> --help` prints."""
    main = importlib.import_module(module).main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["--help"])
    if status != 0:
        raise RuntimeError(f"{module} --help exited with {status}")
    return out.getvalue().rstrip() + "\n"


def _page(title: str, command: str, summary: str, text: str, up: str) -> str:
    return (
        f"# {title}\n\n{_NOTICE}\n\n{summary} What `{command}` prints; "
        f"[all commands, drivers and filters]({up}index.md).\n\n```text\n{text}```\n"
    )


def pages(registry: Registry | None = None) -> dict[str, str]:
    """Every reference page: its path under the reference folder, and its text."""
    registry = registry or Registry()
    result: dict[str, str] = {}
    index = [
        "# Reference",
        "",
        _NOTICE,
        "",
        "Each page is what a command's `--help` prints. The README explains the",
        "ideas and the common jobs; these pages list every option.",
        "",
        "## Commands",
        "",
        "| command | what it is for |",
        "|---|---|",
    ]
    hub_help = _captured(lambda out: print_help(registry, out))
    result["commands/hub4com.md"] = _page("hub4com", "hub4com --help", "The hub itself.", hub_help, "../")
    index.append("| [`hub4com`](commands/hub4com.md) | the hub: ports, routes, filters |")
    for name, what in COMMANDS.items():
        summary = f"{what[0].upper()}{what[1:]}."
        text = _command_help(COMMAND_MODULES[name])
        result[f"commands/{name}.md"] = _page(name, f"{name} --help", summary, text, "../")
        index.append(f"| [`{name}`](commands/{name}.md) | {what} |")
    for group, kind, folder in ((DRIVERS, "driver", "drivers"), (FILTERS, "filter", "filters")):
        index += ["", f"## {folder.capitalize()}", "", f"| {kind} | what it is |", "|---|---|"]
        for name in registry.names(group):
            cls = registry.try_load(group, name)
            if cls is None:
                continue  # a broken third-party plugin: no page
            text = _module_help(registry, name)
            title = f"{name} ({kind})"
            result[f"{folder}/{name}.md"] = _page(
                title, f"hub4com --help={name}", f"{cls.DESCRIPTION}.", text, "../"
            )
            index.append(f"| [`{name}`]({folder}/{name}.md) | {cls.DESCRIPTION} |")
    result["index.md"] = "\n".join(index) + "\n"
    return result


def check(folder: Path, registry: Registry | None = None) -> list[str]:
    """The pages under `folder` that differ from the usage texts (missing, changed or stale)."""
    wanted = pages(registry)
    problems = []
    for rel, text in wanted.items():
        path = folder / rel
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from its usage text")
    for path in sorted(folder.rglob("*.md")):
        if path.relative_to(folder).as_posix() not in wanted:
            problems.append(f"{path}: no usage text makes this page any more")
    return problems


def write(folder: Path, registry: Registry | None = None) -> list[Path]:
    """Write every page under `folder` and remove stale ones; returns the paths written."""
    wanted = pages(registry)
    for path in folder.rglob("*.md"):
        if path.relative_to(folder).as_posix() not in wanted:
            path.unlink()
    written = []
    for rel, text in wanted.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """`python -m hub.docs [--check] [<folder>]`; 0 when the pages are up to date (or written)."""
    args = sys.argv[1:] if argv is None else argv
    checking = "--check" in args
    rest = [a for a in args if a != "--check"]
    if len(rest) > 1 or any(a.startswith("-") for a in rest):
        print("usage: python -m hub.docs [--check] [<folder>]", file=sys.stderr)
        return 2
    folder = Path(rest[0]) if rest else DEFAULT_DIR
    if checking:
        problems = check(folder)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run: python -m hub.docs", file=sys.stderr)
        return 1 if problems else 0
    for path in write(folder):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
