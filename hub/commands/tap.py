"""hub4com-tap: watch a port of a running hub live, from a terminal (for example over SSH).

Usage:
  hub4com-tap [options] <port>
  hub4com-tap (-h | --help)

<port> is a port's name as the hub shows it (TCPM(2), ttyUSB0(0); quote the
parentheses in a shell) or its number. The hub must run with --http; this
command connects to its WebSocket /api/tap/<port> and prints one line per
chunk or signal: time, direction (in: read from the port, out: written to
it), session, source port, size, then the bytes as text and/or hex. A tap
never slows the hub: when this command (or the terminal) is too slow, the hub
drops tap lines and the count is shown.

Options:
  --url=<url>          The hub's HTTP server. Default http://127.0.0.1:8080
                       (or $HUB4COM_URL).
  --hub=<label>        Which hub of the process (default: the first).
  --dir=<d>            in, out or both (default).
  --session=<n>        Only this session of a multi-client port.
  --hex                Show the bytes as hex only.
  --text               Show the bytes as text only (the default shows both
                       for binary data, text alone for printable text).
  --raw                Write the bytes themselves to standard output, nothing
                       else (pipe into a file or hexdump; pair with --dir).
  --max=<n>            Bytes shown of each chunk: 4096 by default, at most
                       65536 (the hub's limit; a longer chunk is cut).
  --count=<n>          Stop after <n> lines.
  --seconds=<s>        Stop after <s> seconds.
  --tls-ca=<file>      Check an HTTPS hub's certificate against these CAs.
  --tls-cert=<file>    Client certificate (a hub with --http-tls-ca wants one).
  --tls-key=<file>     Its key. Default: in the cert file.
  --tls-verify=<v>     none: do not check the hub's certificate. Default peer.
  -h, --help           Show this help.
  --version            Show the version.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import time
import urllib.parse
from typing import Any, TextIO

from docopt import DocoptExit, docopt

from hub.errors import EXIT_FAILURE

from ._common import USAGE_EXIT, docopt_reason, print_version, usage_error

__all__ = ["PROG", "main", "tap_line"]

PROG = "hub4com-tap"
DEFAULT_URL = "http://127.0.0.1:8080"
_PRINTABLE = set(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


class TapError(Exception):
    """A bad option or a hub that cannot be reached; one line for the user."""


def tap_line(event: dict[str, Any], mode: str = "auto") -> str:
    """One event as the line(s) this command prints (`mode`: auto, text or hex)."""
    t = float(event.get("t", 0.0))
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"
    head = f"{stamp} {event.get('dir', '?'):<3}"
    if "session" in event:
        head += f" #{event['session']}"
    if "src" in event:
        head += f" from {event['src']}"
    if "signal" in event:
        return f"{head} {event['signal']}"
    data = bytes.fromhex(event.get("hex", "").replace(" ", ""))
    size = int(event.get("len", len(data)))
    more = f" (first {len(data)} shown)" if size > len(data) else ""
    head += f" {size} B{more}"
    text = data.decode("latin-1").encode("unicode_escape").decode("ascii")
    if mode == "hex" or (mode == "auto" and not set(data) <= _PRINTABLE):
        hex_text = data.hex(" ")
        return f"{head}: {hex_text}" if mode == "hex" else f"{head}: {text}\n    {hex_text}"
    return f"{head}: {text}"


def _ssl_context(args: dict[str, Any]) -> ssl.SSLContext | None:
    ca, cert, key, verify = args["--tls-ca"], args["--tls-cert"], args["--tls-key"], args["--tls-verify"]
    if verify not in (None, "peer", "none"):
        raise TapError(f"--tls-verify must be peer or none, not {verify!r}")
    if not (ca or cert or verify == "none"):
        return None
    ctx = ssl.create_default_context(cafile=ca)
    if verify == "none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TapError(f"cannot load the client certificate {cert}: {exc}") from None
    return ctx


def _tap_url(args: dict[str, Any]) -> str:
    base = (args["--url"] or os.environ.get("HUB4COM_URL") or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(base if "://" in base else "http://" + base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TapError(f"--url must be http://host:port or https://host:port, not {base!r}")
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = {"max": args["--max"] or "4096", "dir": args["--dir"] or "both"}
    if not query["max"].isdigit():
        raise TapError("--max must be a number of bytes")
    if query["dir"] not in ("in", "out", "both"):
        raise TapError("--dir must be in, out or both")
    if args["--session"]:
        query["session"] = args["--session"]
    if args["--hub"]:
        query["hub"] = args["--hub"]
    path = f"{parts.path}/api/tap/{urllib.parse.quote(args['<port>'], safe='')}"
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, urllib.parse.urlencode(query), ""))


def _number(args: dict[str, Any], name: str) -> float | None:
    text = args[name]
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise TapError(f"{name} must be a number") from None
    if value <= 0:
        raise TapError(f"{name} must be more than 0")
    return value


async def _run(args: dict[str, Any], out: TextIO, err: TextIO) -> int:
    import aiohttp  # the hub's own dependency; imported late so --help stays quick

    url = _tap_url(args)
    count = _number(args, "--count")
    seconds = _number(args, "--seconds")
    ctx = _ssl_context(args)
    mode = "hex" if args["--hex"] else "text" if args["--text"] else "auto"
    raw = args["--raw"]
    shown = lost = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, ssl=ctx if ctx is not None else True, heartbeat=30) as ws:
                while count is None or shown < count:
                    timeout = None if deadline is None else deadline - time.monotonic()
                    if timeout is not None and timeout <= 0:
                        break
                    try:
                        msg = await asyncio.wait_for(ws.receive(), timeout)
                    except TimeoutError:
                        break
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(msg.data)
                    if data.get("type") == "hello":
                        print(f"tapping {data['port']} ({data['kind']}); Ctrl-C stops", file=err)
                        continue
                    lost = int(data.get("lost_events", lost))
                    for event in data.get("events", ()):
                        if raw:
                            if "hex" in event:
                                sys.stdout.buffer.write(bytes.fromhex(event["hex"].replace(" ", "")))
                        else:
                            print(tap_line(event, mode), file=out)
                        shown += 1
                        if count is not None and shown >= count:
                            break
                    if raw:
                        sys.stdout.buffer.flush()
                    else:
                        out.flush()
    except aiohttp.WSServerHandshakeError as exc:
        reason = "no such port" if exc.status == 404 else f"HTTP {exc.status} {exc.message}"
        raise TapError(f"{url}: {reason}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise TapError(f"cannot reach the hub at {url}: {exc}") from None
    print(f"{shown} lines; {lost} lost by the hub (tap too slow)", file=err)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 when done, 1 if the hub cannot be reached, 2 for a bad command line."""
    argv = sys.argv[1:] if argv is None else argv
    if "--version" in argv:
        return print_version(PROG)
    try:
        args = docopt(__doc__ or "", argv=argv, default_help=False)
    except DocoptExit as exc:
        return usage_error(PROG, docopt_reason(exc, argv, __doc__ or ""))
    if args["--help"]:
        print((__doc__ or "").strip())
        return 0
    try:
        return asyncio.run(_run(args, sys.stdout, sys.stderr))
    except TapError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_FAILURE if "cannot reach" in str(exc) or "no such port" in str(exc) else USAGE_EXIT
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
