"""The relays under test and the command line each one gets for a topology.

A topology says what to relay (a pty device to TCP clients, or TCP to TCP); a relay
turns it into a command line, writing a config file first where the peer needs one.
Every command line lives here, in one place; how our hub listens (N `*PORT` slots
or one tcp-multi port) is decided by `hub_listener_args()` alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LISTENERS",
    "MULTI",
    "REPO",
    "SLOTS",
    "BareRelay",
    "NotSupported",
    "PtyLinks",
    "PtyTcp",
    "Rack",
    "Relay",
    "TcpTcp",
    "Topology",
    "hub_listener_args",
    "make_relays",
    "snapshot_hub",
]

#: Runs our hub with uvloop unimportable, so it falls back to the standard loop.
NO_UVLOOP = "import sys; sys.modules['uvloop'] = None; from hub.main import main; sys.exit(main())"
#: The repository root: our hub runs from here.
REPO = Path(__file__).resolve().parent.parent


class NotSupported(Exception):
    """The relay cannot do this topology (the message says why)."""


@dataclass(frozen=True)
class PtyTcp:
    """A pty slave (the relay's "serial device") served to `clients` TCP clients on `port`."""

    device: str
    port: int
    clients: int = 1


@dataclass(frozen=True)
class TcpTcp:
    """Accept on `listen`, relay to a TCP server on 127.0.0.1:`sink`."""

    listen: int
    sink: int


@dataclass(frozen=True)
class PtyLinks:
    """`count` pty ports with links in `directory` that no application opens
    (`--route=All:All` with `all_to_all`)."""

    directory: str
    count: int
    all_to_all: bool = False

    def links(self) -> list[str]:
        return [f"{self.directory}/p{i}" for i in range(self.count)]


@dataclass(frozen=True)
class Rack:
    """Devices (pty slaves) served as a config file would: device i as RFC 2217 on
    `ports[i][0]` (up to 4 clients) and raw TCP on `ports[i][1]` (one client, a
    newcomer replaces it). A changed `first_baud` is a config change to reload."""

    devices: tuple[str, ...]
    ports: tuple[tuple[int, int], ...]
    first_baud: int = 115200


Topology = PtyTcp | TcpTcp | PtyLinks | Rack


#: How our hub serves TCP clients on one port: hub4com's way, one permanent `*PORT`
#: slot of the tcp driver per client, or one tcp-multi port for any number of them.
SLOTS = "slots"
MULTI = "multi"
LISTENERS = (SLOTS, MULTI)


def hub_listener_args(port: int, clients: int, listener: str) -> list[str]:
    """Our hub's driver options and port arguments for `clients` sessions on one TCP port.

    The one place that says how our hub listens; every scenario goes through it.
    """
    if listener == MULTI:
        # Lossless, as the peers are: a slow session throttles the device, never loses data.
        return ["--use-driver=tcp-multi", *HUB_NET, "--slow-client=block", str(port)]
    return ["--use-driver=tcp", *HUB_NET, *[f"*{port}"] * clients]


class Relay:
    """A relay under test. Subclasses build command lines per topology."""

    #: Short name used in tables and the JSON file.
    name = ""
    #: True for our hub (ratios are ours / peer).
    ours = False
    #: Working directory for the relay process (None: the bench's).
    cwd: Path | None = None
    #: Measured only in scenarios that ask for every event loop (Scenario.every_loop).
    every_loop_only = False

    def unavailable(self) -> str | None:
        """Why this relay cannot run here, or None if it can."""
        return None

    def version(self) -> str:
        """A one-line version string for the report."""
        return ""

    def command(self, topo: Topology, workdir: Path) -> list[str]:
        """The argv for a topology (writing its config file, if any, into `workdir`:
        called again for a changed topology, it rewrites the file for a reload).
        Raises NotSupported."""
        if isinstance(topo, PtyTcp):
            return self.pty_tcp(topo, workdir)
        if isinstance(topo, TcpTcp):
            return self.tcp_tcp(topo, workdir)
        if isinstance(topo, PtyLinks):
            return self.pty_links(topo, workdir)
        return self.rack(topo, workdir)

    def pty_tcp(self, topo: PtyTcp, workdir: Path) -> list[str]:
        raise NotSupported("no pty to TCP mode")

    def tcp_tcp(self, topo: TcpTcp, workdir: Path) -> list[str]:
        raise NotSupported("no TCP to TCP mode")

    def pty_links(self, topo: PtyLinks, workdir: Path) -> list[str]:
        raise NotSupported("makes no ptys for applications")

    def rack(self, topo: Rack, workdir: Path) -> list[str]:
        raise NotSupported("serves one device per process")

    #: How the relay is told to reread its config (None: it cannot be).
    reload_signal: int | None = None


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


#: Our hub's listener options: loopback only, and no per-address connection rate
#: limit (its default, 20 per second, would refuse most of a storm from 127.0.0.1).
HUB_NET = ["--interface=127.0.0.1", "--max-rate=0"]
#: Our hub's import packages.
HUB_PACKAGES = ("hub", "drivers", "filters")


def snapshot_hub(dest: Path, src: Path = REPO) -> str:
    """Copy our hub's packages from src into dest; return a digest of the copied sources.

    The hub then runs with dest as its working directory, so its packages are
    imported from the copy (the current directory comes before the editable
    install on sys.path): edits made to the tree during a long run do not change
    what is measured.
    """
    for pkg in HUB_PACKAGES:
        shutil.copytree(src / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted(dest.rglob("*.py")):
        digest.update(str(path.relative_to(dest)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


class HubRelay(Relay):
    """Our hub, `python -m hub`: uvloop or the standard asyncio loop, slots or tcp-multi."""

    ours = True

    def __init__(
        self,
        uvloop: bool = True,
        listener: str = SLOTS,
        src: Path | None = None,
        digest: str = "",
        origin: Path = REPO,
    ) -> None:
        self.uvloop = uvloop
        self.listener = listener
        self.name = "hub" + ("-multi" if listener == MULTI else "") + ("" if uvloop else "-asyncio")
        self.cwd = src or REPO
        self._digest = digest
        #: The tree the sources come from (for the version string).
        self.origin = origin
        #: Drivers the scenarios need.
        self.drivers = ("serial", "tcp", "tcp-multi") if listener == MULTI else ("serial", "tcp")

    def _base(self) -> list[str]:
        if self.uvloop:
            return [sys.executable, "-m", "hub", "-q"]
        return [sys.executable, "-c", NO_UVLOOP, "-q"]

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("hub") is None:
            return f"the hub package is not importable by {sys.executable}"
        if self.uvloop and importlib.util.find_spec("uvloop") is None:
            return "uvloop is not installed (use --no-uvloop)"
        # The drivers the scenarios use must load (the tree may be half-edited).
        argv = [*self._base()[:-1], f"--help={','.join(self.drivers)}"]
        try:
            out = subprocess.run(argv, cwd=self.cwd, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot run the hub: {exc}"
        if out.returncode != 0:
            lines = (out.stderr or out.stdout).strip().splitlines()
            return f"drivers {', '.join(self.drivers)} do not load: {lines[0] if lines else out.returncode}"
        return None

    def version(self) -> str:
        loop = ("uvloop" if self.uvloop else "asyncio") + f", {self.listener} listener"
        rev = _first_line(["git", "-C", str(self.origin), "describe", "--always", "--dirty"])
        copy = f", sources sha256 {self._digest} copied from {self.origin} at start" if self._digest else ""
        return f"hub4com-py {rev} ({loop}, {sys.executable}{copy or ', live tree'})"

    def pty_tcp(self, topo: PtyTcp, workdir: Path) -> list[str]:
        return [
            *self._base(),
            "--route=0:All",
            "--route=All:0",
            "--octs=off",
            topo.device,
            *hub_listener_args(topo.port, topo.clients, self.listener),
        ]

    def tcp_tcp(self, topo: TcpTcp, workdir: Path) -> list[str]:
        return [
            *self._base(),
            *hub_listener_args(topo.listen, 1, self.listener),
            "--use-driver=tcp",
            *HUB_NET,
            f"*127.0.0.1:{topo.sink}",
        ]

    reload_signal = signal.SIGHUP

    def _once(self) -> None:
        """The service topologies do not depend on the listener: measured once."""
        if self.listener != MULTI:
            raise NotSupported(f"measured once, as {self.name.replace('hub', 'hub-multi', 1)}")

    def pty_links(self, topo: PtyLinks, workdir: Path) -> list[str]:
        self._once()
        routes = ["--route=All:All"] if topo.all_to_all else []
        return [*self._base(), *routes, "--use-driver=pty", *topo.links()]

    def rack(self, topo: Rack, workdir: Path) -> list[str]:
        """hub4com --config with the lab rack example's shape (examples/lab-rack.toml)."""
        self._once()
        text = [
            '[defaults.serial]\nbaud = 115200\nocts = "off"\n',
            '[defaults.tcp-multi]\ninterface = "127.0.0.1"\nmax-rate = 0\n',
        ]
        for i, (dev, (rfc, raw)) in enumerate(zip(topo.devices, topo.ports, strict=True)):
            baud = f"baud = {topo.first_baud}\n" if i == 0 else ""
            text.append(
                f'[device.d{i:02d}]\npath = "{dev}"\nrequired = true\n{baud}'
                f"rfc2217 = {{ port = {rfc}, max-clients = 4 }}\n"
                f"raw = {{ port = {raw}, max-clients = 1, kick-oldest = true }}\n"
            )
        config = workdir / "hub.toml"
        config.write_text("\n".join(text))
        return [*self._base(), f"--config={config}"]


class SocatRelay(Relay):
    """socat (Debian package) with 64 KiB buffers: one client per process, no fan-out."""

    name = "socat"
    #: socat's transfer block size; its default 8 KiB is a little slower.
    BUFFER = ["-b", "65536"]

    def unavailable(self) -> str | None:
        return None if shutil.which("socat") else "socat not found on PATH (apt-get install socat)"

    def version(self) -> str:
        return _socat_version()

    def pty_tcp(self, topo: PtyTcp, workdir: Path) -> list[str]:
        if topo.clients != 1:
            raise NotSupported("serves one client per device")
        return ["socat", *self.BUFFER, f"FILE:{topo.device},raw,echo=0", _socat_listen(topo.port)]

    def tcp_tcp(self, topo: TcpTcp, workdir: Path) -> list[str]:
        return ["socat", *self.BUFFER, _socat_listen(topo.listen), f"TCP:127.0.0.1:{topo.sink}"]


class BareRelay(Relay):
    """bench/bare_relay.py: a uvloop relay that only forwards (TCP to TCP), the floor
    for a Python relay; `layers` trivial bookkeeping calls per chunk on top.
    Not in the default set: `python -m bench.msgcost --relay bare`."""

    cwd = REPO

    def __init__(self, layers: int = 0) -> None:
        self.layers = layers
        self.name = "bare" + (f"+{layers}" if layers else "")

    def unavailable(self) -> str | None:
        return None if importlib.util.find_spec("uvloop") else "uvloop is not installed"

    def version(self) -> str:
        return f"bench/bare_relay.py ({self.layers} extra layers per chunk)"

    def tcp_tcp(self, topo: TcpTcp, workdir: Path) -> list[str]:
        argv = [sys.executable, "-m", "bench.bare_relay", str(topo.listen), str(topo.sink)]
        return [*argv, str(self.layers)] if self.layers else argv


def _socat_listen(port: int) -> str:
    return f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"


def _socat_version() -> str:
    try:
        out = subprocess.run(["socat", "-V"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "socat (unknown version)"
    for line in out.stdout.splitlines():
        if line.startswith("socat version"):
            return " ".join(line.split()[:3])
    return "socat (unknown version)"


class Ser2netRelay(Relay):
    """ser2net 4 (Debian package), tuned: no chardelay, 64 KiB buffers, N connections."""

    name = "ser2net"
    #: Options for every connection; the defaults (chardelay, 64-byte buffers) are much slower.
    OPTIONS = ("chardelay: false", "dev-to-net-bufsize: 65536", "net-to-dev-bufsize: 65536")

    def unavailable(self) -> str | None:
        return None if shutil.which("ser2net") else "ser2net not found on PATH (apt-get install ser2net)"

    def version(self) -> str:
        return _first_line(["ser2net", "-v"])

    def _run(self, accept_port: int, connector: str, clients: int, workdir: Path) -> list[str]:
        options = [*self.OPTIONS, f"max-connections: {clients}", "kickolduser: false"]
        config = workdir / "ser2net.yaml"
        config.write_text(
            "%YAML 1.1\n---\nconnection: &bench\n"
            f"  accepter: tcp,127.0.0.1,{accept_port}\n"
            f"  connector: {connector}\n"
            "  options:\n" + "".join(f"    {o}\n" for o in options)
        )
        return ["ser2net", "-d", "-u", "-c", str(config)]

    def pty_tcp(self, topo: PtyTcp, workdir: Path) -> list[str]:
        return self._run(topo.port, f"serialdev,{topo.device},115200n81,local", topo.clients, workdir)

    def tcp_tcp(self, topo: TcpTcp, workdir: Path) -> list[str]:
        return self._run(topo.listen, f"tcp,127.0.0.1,{topo.sink}", 1, workdir)

    def rack(self, topo: Rack, workdir: Path) -> list[str]:
        """Two connections per device, as the rack example: RFC 2217 and raw."""
        text = ["%YAML 1.1\n---\n"]
        for i, (dev, (rfc, raw)) in enumerate(zip(topo.devices, topo.ports, strict=True)):
            baud = topo.first_baud if i == 0 else 115200
            for name, kind, port, options in (
                ("rfc", "telnet(rfc2217),tcp", rfc, ("max-connections: 4", "kickolduser: false")),
                ("raw", "tcp", raw, ("max-connections: 1", "kickolduser: true")),
            ):
                text.append(
                    f"connection: &d{i:02d}{name}\n"
                    f"  accepter: {kind},127.0.0.1,{port}\n"
                    f"  connector: serialdev,{dev},{baud}n81,local\n"
                    "  options:\n" + "".join(f"    {o}\n" for o in (*self.OPTIONS, *options))
                )
        config = workdir / "ser2net.yaml"
        config.write_text("".join(text))
        return ["ser2net", "-d", "-u", "-c", str(config)]


class Ser2tcpRelay(Relay):
    """ser2tcp (pip), found through BENCH_SER2TCP, PATH, or the running interpreter."""

    name = "ser2tcp"

    def __init__(self) -> None:
        self._argv = self._find()

    @staticmethod
    def _find() -> list[str] | None:
        env = os.environ.get("BENCH_SER2TCP")
        if env:
            return shlex.split(env)
        path = shutil.which("ser2tcp")
        if path:
            return [path]
        if importlib.util.find_spec("ser2tcp") is not None:
            return [sys.executable, "-c", "import sys; from ser2tcp.main import main; sys.exit(main())"]
        return None

    def unavailable(self) -> str | None:
        if self._argv is None:
            return "ser2tcp not found (pip install ser2tcp, or set BENCH_SER2TCP=/path/to/ser2tcp)"
        return None

    def version(self) -> str:
        return _first_line([*(self._argv or []), "--version"])

    def pty_tcp(self, topo: PtyTcp, workdir: Path) -> list[str]:
        assert self._argv is not None
        config = workdir / "ser2tcp.json"
        server = {"address": "127.0.0.1", "port": topo.port, "protocol": "tcp"}
        port = {"serial": {"port": topo.device, "baudrate": 115200}, "servers": [server]}
        config.write_text(json.dumps({"ports": [port]}))
        return [*self._argv, "-q", "-c", str(config)]

    def tcp_tcp(self, topo: TcpTcp, workdir: Path) -> list[str]:
        raise NotSupported("relays serial ports only")


def make_relays(
    loops: tuple[bool, ...],
    listeners: tuple[str, ...],
    src: Path | None = None,
    digest: str = "",
    origin: Path = REPO,
    asyncio_for_latency: bool = False,
) -> list[Relay]:
    """Our hub (each event loop, uvloop True or False, and each listener, run from `src`), then the peers.

    `asyncio_for_latency`: add our hub (slots) on the standard asyncio loop for the
    scenarios that measure every loop (Scenario.every_loop) only.
    """
    ours: list[Relay] = [
        HubRelay(loop, listener, src, digest, origin) for loop in loops for listener in listeners
    ]
    if asyncio_for_latency and False not in loops:
        extra = HubRelay(False, SLOTS, src, digest, origin)
        extra.every_loop_only = True
        ours.append(extra)
    return [*ours, SocatRelay(), Ser2netRelay(), Ser2tcpRelay()]
