"""--import-ser2net: a ser2net 4.x YAML config as a hub4com config file.

ser2net's files are not plain YAML (the same ``connection:`` key repeats, one
per connection), so this reads its common forms line by line::

    connection: &name
      accepter: tcp,localhost,2000 | telnet,2001 | telnet(rfc2217),tcp,3001
      enable: on | off
      connector: serialdev,/dev/ttyS0,9600n81,local[,rtscts]
      options:
        max-connections: 4
        kickolduser: true

Each connection becomes a device served as raw, telnet or rfc2217. ser2net
opens a device only while a client is connected, so the devices get
share-mode (which also lets two connections name one device). What has no
counterpart (banners, trace files, ...) is listed in a comment, never dropped
silently.
"""

from __future__ import annotations

import json
import re

from .errors import UsageError
from .registry import Registry

__all__ = ["import_ser2net", "ser2net_to_toml"]

_SPEED_RE = re.compile(r"(\d+)([noems])([5-8])([12])\Z", re.IGNORECASE)
_KINDS = {"tcp": "raw", "telnet": "telnet"}


def _blocks(text: str) -> list[tuple[int, str, list[tuple[int, str, str]]]]:
    """Top-level `connection:` blocks: (line, anchor, [(line, key path, value)])."""
    blocks: list[tuple[int, str, list[tuple[int, str, str]]]] = []
    stack: list[tuple[int, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip() or line.startswith(("%", "---", "...")):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            stack = []
            key, _, value = line.partition(":")
            if key.strip() == "connection":
                anchor = value.strip()[1:] if value.strip().startswith("&") else ""
                blocks.append((n, anchor, []))
            else:
                stack = [(-1, "#skip")]  # define:, default:, ... are not connections
            continue
        if stack and stack[0][1] == "#skip":
            continue
        if not blocks:
            continue
        entries = blocks[-1][2]
        m = re.match(r"\s*([\w-]+):\s*(.*)\Z", line)
        if m is None:  # a continuation of the previous value (connector: serialdev,\n /dev/ttyS0,...)
            if entries:
                ln, key, value = entries[-1]
                entries[-1] = (ln, key, value + line.strip())
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([s[1] for s in stack] + [m.group(1)])
        entries.append((n, path, m.group(2).strip()))
        if not m.group(2).strip():
            stack.append((indent, m.group(1)))
    return blocks


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def ser2net_to_toml(text: str, file: str) -> str:
    """The config file for ser2net config `text`. Raises UsageError for a form it cannot read."""
    out = [f"# Imported from {file} by hub4com --import-ser2net.", ""]
    left_out: list[str] = []
    names: set[str] = set()
    for n, (line, anchor, entries) in enumerate(_blocks(text), 1):
        name = anchor or f"connection{n}"
        while name in names:
            name += "-2"
        names.add(name)
        values = {key: (ln, value) for ln, key, value in entries}

        def err(
            key: str, what: str, _line: int = line, _values: dict[str, tuple[int, str]] = values
        ) -> UsageError:
            at = _values.get(key, (_line, ""))[0]
            return UsageError(None, f"{what} (file {file}, line {at}, key {key})")

        if values.get("enable", (0, "on"))[1].lower() in ("off", "false", "no"):
            out.append(f"# {name}: enable: off, left out")
            continue
        if "accepter" not in values or "connector" not in values:
            raise err("connection", "expected an accepter and a connector")
        acc = [t.strip() for t in values["accepter"][1].split(",") if t.strip()]
        kind = _KINDS.get(acc[0].split("(")[0].lower()) if acc else None
        if kind is None:
            raise err("accepter", f"unsupported accepter {values['accepter'][1]!r} (tcp or telnet)")
        if kind == "telnet" and "rfc2217" in acc[0].lower():
            kind = "rfc2217"
        rest = [t for t in acc[1:] if t.lower() not in ("tcp", "ipv4", "ipv6")]
        if not rest or not rest[-1].isdigit():
            raise err("accepter", f"no TCP port in {values['accepter'][1]!r}")
        address: str | int = int(rest[-1]) if len(rest) == 1 else f"{rest[-2]}:{rest[-1]}"
        con = [t.strip() for t in values["connector"][1].split(",") if t.strip()]
        if len(con) < 2 or con[0].lower() != "serialdev":
            raise err("connector", f"unsupported connector {values['connector'][1]!r} (serialdev)")
        out.append(f"[device.{_toml(name)}]")
        out.append(f"path = {_toml(con[1])}")
        octs = False
        for item in con[2:]:
            m = _SPEED_RE.match(item)
            low = item.lower()
            if m:
                out.append(f"baud = {m.group(1)}")
                out.append(f"parity = {_toml(m.group(2).lower())}")
                out.append(f"data = {m.group(3)}")
                out.append(f"stop = {m.group(4)}")
            elif low == "rtscts":
                octs = True
            elif low in ("local", "-rtscts", "nobreak", "clocal"):
                pass  # what the hub does anyway: modem lines do not stop the port
            else:
                left_out.append(f"{name}: connector option {item}")
        out.append(f'octs = "{"on" if octs else "off"}"')
        out.append("share-mode = true  # ser2net opens the device only while a client is connected")
        service = [f"port = {_toml(address)}"]
        max_clients = 1
        for key, (_, value) in values.items():
            if not key.startswith("options."):
                continue
            opt = key[len("options.") :]
            if opt == "max-connections" and value.isdigit():
                max_clients = int(value)
            elif opt == "kickolduser":
                if value.lower() in ("true", "on", "yes", "1"):
                    service.append("kick-oldest = true")
            else:
                left_out.append(f"{name}: option {opt}")
        service.append(f"max-clients = {max_clients}")
        out.append(f"{kind} = {{ {', '.join(service)} }}")
        out.append("")
    if not names:
        raise UsageError(None, f"No connection found in {file}")
    if left_out:
        out.insert(2, "# Left out (no counterpart in the hub): " + "; ".join(left_out))
        out.insert(3, "")
    return "\n".join(out).rstrip() + "\n"


def import_ser2net(file: str, registry: Registry) -> str:
    """Read ser2net config `file`; return the config file text, checked. Raises UsageError."""
    from .config import parse_config, read_text

    toml = ser2net_to_toml(read_text(file, "the ser2net config"), file)
    parse_config(toml, f"{file} (imported)", registry)  # what we print must load
    return toml
