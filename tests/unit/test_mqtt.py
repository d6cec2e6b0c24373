"""The mqtt driver's sans-IO parts: URLs, options, framing, ctl JSON, and the port's queues.

No broker here (tests/e2e/test_mqtt.py runs a real mosquitto). The port tests
drive an MqttPort on an event loop that is never connected: they check what
it queues for publishing and what it hands the hub.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import drivers.mqtt as mqttmod
from drivers.mqtt import (
    HOLD_LIMIT_BYTES,
    MISSING_AIOMQTT,
    USAGE,
    ChunkFramer,
    CtlError,
    CtlKind,
    Frame,
    LineFramer,
    MqttDriver,
    MqttPort,
    MqttUrl,
    Role,
    Topics,
    decode_ctl,
    encode_ctl,
    field_messages,
    parse_url,
    signal_fields,
)
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import (
    BreakStatus,
    FlowControl,
    LineControl,
    LineData,
    LocalBaudStatus,
    LocalLcStatus,
    Message,
    ModemStatus,
    Msr,
    Parity,
    Pin,
    PurgeTx,
    PurgeTxIn,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    SetLineControl,
    SetLsr,
    SetPins,
    StopBits,
)
from hub.options import option_names

#: Creating a port imports aiomqtt (the optional extra `mqtt`).
needs_aiomqtt = pytest.mark.skipif(
    importlib.util.find_spec("aiomqtt") is None, reason="aiomqtt is not installed (pip install '.[mqtt]')"
)

# ---- URLs -------------------------------------------------------------------------------

URLS = [
    ("mqtt://broker/gps", MqttUrl(False, "broker", 1883, "gps")),
    ("mqtts://broker/gps", MqttUrl(True, "broker", 8883, "gps")),
    ("MQTT://10.0.0.1:1884/fleet/truck7/gps/", MqttUrl(False, "10.0.0.1", 1884, "fleet/truck7/gps")),
    ("mqtt://bob@broker/x", MqttUrl(False, "broker", 1883, "x", "bob", None)),
    ("mqtts://bob:p%40ss%3Aw@broker:9000/x", MqttUrl(True, "broker", 9000, "x", "bob", "p@ss:w")),
    ("mqtt://[::1]:1883/a%20b", MqttUrl(False, "::1", 1883, "a b")),
]


@pytest.mark.parametrize(("text", "url"), URLS)
def test_parse_url(text: str, url: MqttUrl) -> None:
    assert parse_url(text) == url


BAD_URLS = [
    ("tcp://broker/gps", "use mqtt://"),
    ("broker/gps", "use mqtt://"),
    ("mqtt:///gps", "no broker"),
    ("mqtt://broker", "Missing topic prefix"),
    ("mqtt://broker/", "Missing topic prefix"),
    ("mqtt://broker/fleet/+/gps", "no wildcards"),
    ("mqtt://broker/fleet/%23", "no wildcards"),
    ("mqtt://broker:70000/gps", "bad port"),
    ("mqtt://broker:0/gps", "bad port"),
    ("mqtt://broker:x/gps", "bad port"),
    ("mqtt://broker/gps?qos=1", "no ?query"),
    ("mqtt://[::1/gps", "bad port or address"),
]


@pytest.mark.parametrize(("text", "why"), BAD_URLS)
def test_parse_url_refuses(text: str, why: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_url(text)
    assert why in info.value.text
    assert info.value.arg == text


def test_url_display_hides_the_password() -> None:
    url = parse_url("mqtts://bob:secret@[::1]:8884/p")
    assert str(url) == "mqtts://bob@[::1]:8884/p"
    assert url.broker == "[::1]:8884"


def test_topics_by_role() -> None:
    t = Topics.of("fleet/gps")
    assert (t.rx, t.tx, t.ctl, t.status) == (
        "fleet/gps/rx",
        "fleet/gps/tx",
        "fleet/gps/ctl",
        "fleet/gps/status",
    )
    assert (t.data_out(Role.DEVICE), t.data_in(Role.DEVICE)) == (t.rx, t.tx)
    assert (t.data_out(Role.CLIENT), t.data_in(Role.CLIENT)) == (t.tx, t.rx)
    assert t.subscriptions(Role.DEVICE) == [t.tx, t.ctl]
    assert t.subscriptions(Role.CLIENT) == [t.rx, t.ctl, t.status]


# ---- options ----------------------------------------------------------------------------


class _Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self.loop = loop
        self.got: list[Message] = []

    def received(self, port: int, msgs: list[Message]) -> None:
        self.got.extend(msgs)


def test_usage_declares_every_option() -> None:
    assert option_names(USAGE) == set(MqttDriver.DEFAULTS)
    assert "[default:" not in USAGE


def test_options_convert() -> None:
    d = MqttDriver(_Hub())  # type: ignore[arg-type]
    for arg in (
        "--role=c",
        "--qos=1",
        "--keepalive=5",
        "--backoff=100,400",
        "--frame=b",
        "--frame-bytes=512",
        "--frame-delay=0",
        "--client-id=truck7",
        "--write-limit=0",
    ):
        assert d.config_arg(arg)
    o = d.options
    assert o["--role"] is Role.CLIENT and o["--frame"] is Frame.BYTES
    assert (o["--qos"], o["--keepalive"], o["--backoff"]) == (1, 5, (0.1, 0.4))
    assert (o["--frame-bytes"], o["--frame-delay"], o["--client-id"], o["--write-limit"]) == (
        512,
        0,
        "truck7",
        0,
    )
    assert d.config_arg("--backoff=50")
    assert d.options["--backoff"] == (0.05, 30.0)
    assert not d.config_arg("--baud=9600")


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        ("--role=server", "Invalid --role value (expected device or client)"),
        ("--role=", "Invalid --role value"),
        ("--qos=2", "Invalid --qos value (0 to 1)"),
        ("--keepalive=0", "Invalid --keepalive value"),
        ("--backoff=5", "Invalid --backoff value"),
        ("--backoff=500,100", "Invalid --backoff value"),
        ("--backoff=a,b", "Invalid --backoff value"),
        ("--frame=packet", "Invalid --frame value (expected line or bytes)"),
        ("--frame-bytes=0", "Invalid --frame-bytes value"),
        ("--frame-delay=-1", "Invalid --frame-delay value"),
        ("--write-limit=lots", "Invalid --write-limit value"),
    ],
)
def test_option_errors(arg: str, text: str) -> None:
    d = MqttDriver(_Hub())  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        d.config_arg(arg)
    assert text in str(info.value)
    assert info.value.arg == arg


def _port(argv: list[str], path: str = "mqtt://127.0.0.1/t/dev", hub: Any = None) -> MqttPort:
    d = MqttDriver(hub or _Hub())
    for a in argv:
        d.config_arg(a)
    return d.create_port(0, path, dict(d.options))


@needs_aiomqtt
def test_create_port_errors(tmp_path: Any) -> None:
    with pytest.raises(UsageError, match="TLS options given for an mqtt:// URL"):
        _port(["--tls-ca=/etc/ssl/certs/ca-certificates.crt"])
    with pytest.raises(UsageError, match="Cannot use the CA file") as info:
        _port([f"--tls-ca={tmp_path}/missing.pem"], "mqtts://127.0.0.1/t")
    assert info.value.arg == f"--tls-ca={tmp_path}/missing.pem"
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(UsageError, match="Cannot use the certificate or key"):
        _port([f"--tls-cert={bad}"], "mqtts://127.0.0.1/t")
    d = MqttDriver(_Hub())  # type: ignore[arg-type]
    d.config_arg("--client-id=same")
    d.create_port(0, "mqtt://127.0.0.1/a", dict(d.options))
    with pytest.raises(UsageError, match="client id same"):
        d.create_port(1, "mqtt://127.0.0.1/b", dict(d.options))


@needs_aiomqtt
def test_random_client_ids_differ() -> None:
    d = MqttDriver(_Hub())  # type: ignore[arg-type]
    a = d.create_port(0, "mqtt://127.0.0.1/a", dict(d.options))
    b = d.create_port(1, "mqtt://127.0.0.1/a", dict(d.options))
    assert a.settings.client_id.startswith("hub4com-") and a.settings.client_id != b.settings.client_id


def test_missing_aiomqtt_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiomqtt", None)  # import aiomqtt -> ImportError
    with pytest.raises(UsageError) as info:
        _port([])
    assert info.value.text == MISSING_AIOMQTT
    assert MISSING_AIOMQTT == "the mqtt driver needs aiomqtt: pip install 'hub4com-py[mqtt]'"


def test_module_imports_without_aiomqtt() -> None:
    assert "aiomqtt" not in vars(mqttmod)


@needs_aiomqtt
def test_capabilities_by_role() -> None:
    dev, cli = _port([]), _port(["--role=client"])
    assert dev.provides == In.CTS | In.DSR | In.RBR | In.RLC | In.BREAK | In.PURGE_TX_IN
    assert dev.accepts == Out.MODEM | Out.SET_BR | Out.SET_LC
    assert cli.provides == In.LBR | In.LLC | In.MODEM
    assert cli.accepts == Out.DTR | Out.RTS | Out.BREAK | Out.SET_BR | Out.SET_LC | Out.PURGE_TX
    assert dev.name == "MQTT(0)"


# ---- framing ----------------------------------------------------------------------------

LINE_CASES = [
    # (chunks fed, messages after each chunk, pending at the end)
    ([b"$GPGGA,1*00\r\n"], [[b"$GPGGA,1*00\r\n"]], 0),
    ([b"a\nb\nc"], [[b"a\n", b"b\n"]], 1),
    ([b"ab", b"c\nd", b"e\n"], [[], [b"abc\n"], [b"de\n"]], 0),
    ([b"\n\n"], [[b"\n", b"\n"]], 0),
    ([b"x\ry\n"], [[b"x\ry\n"]], 0),
    ([b"", b"q"], [[], []], 1),
]


@pytest.mark.parametrize(("chunks", "expected", "pending"), LINE_CASES)
def test_line_framer(chunks: list[bytes], expected: list[list[bytes]], pending: int) -> None:
    f = LineFramer(64)
    assert [f.feed(c, 0.0) for c in chunks] == expected
    assert f.pending == pending
    assert f.deadline is None and f.due(1e9) == []


def test_line_framer_cuts_long_lines() -> None:
    f = LineFramer(4)
    assert f.feed(b"abcdefghij", 0) == [b"abcd", b"efgh"]
    assert f.pending == 2
    assert f.feed(b"\nxy\n", 0) == [b"ij\n", b"xy\n"]
    assert f.feed(b"0123\n", 0) == [b"0123", b"\n"]
    assert f.cut_lines == 2


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=12),
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),  # a partial last line
    st.lists(st.integers(0, 600), max_size=8),
    st.integers(1, 50),
)
def test_line_framer_splits_do_not_matter(
    lines: list[bytes], tail: bytes, cuts: list[int], max_bytes: int
) -> None:
    stream = b"".join(lines) + tail
    whole = LineFramer(max_bytes)
    expected = whole.feed(stream, 0)
    f = LineFramer(max_bytes)
    got: list[bytes] = []
    pos = 0
    for cut in sorted(c for c in cuts if c <= len(stream)):
        got += f.feed(stream[pos:cut], 0)
        pos = cut
    got += f.feed(stream[pos:], 0)
    assert got == expected
    assert b"".join(got) + stream[len(stream) - f.pending :] == stream
    assert f.pending == whole.pending <= max_bytes
    assert all(len(m) <= max_bytes for m in got)
    if max_bytes > 41:  # no line was cut: every message is one whole line
        assert got == lines


def test_chunk_framer_size_and_delay() -> None:
    f = ChunkFramer(8, 0.01)
    assert f.feed(b"abc", 1.0) == [] and f.deadline == 1.01
    assert f.feed(b"de", 1.005) == [] and f.deadline == 1.01
    assert f.due(1.009) == []
    assert f.due(1.01) == [b"abcde"]
    assert (f.pending, f.deadline) == (0, None)
    assert f.feed(b"0123456789abcdefXY", 2.0) == [b"01234567", b"89abcdef"]
    assert (f.pending, f.deadline) == (2, 2.01)
    assert f.feed(b"012345", 2.001) == [b"XY012345"]
    assert (f.pending, f.deadline) == (0, None)
    assert f.feed(b"", 3.0) == [] and f.deadline is None


def test_chunk_framer_zero_delay_publishes_each_turn() -> None:
    f = ChunkFramer(4096, 0.0)
    assert f.feed(b"a", 5.0) == []
    assert f.due(5.0) == [b"a"]


@given(st.lists(st.binary(max_size=100), max_size=20), st.integers(1, 64))
def test_chunk_framer_keeps_the_stream(chunks: list[bytes], max_bytes: int) -> None:
    f = ChunkFramer(max_bytes, 0.5)
    got: list[bytes] = []
    for i, c in enumerate(chunks):
        got += f.feed(c, float(i))
        assert all(len(m) == max_bytes for m in got)
        assert f.pending < max_bytes
    got += f.due(1e9)
    assert b"".join(got) == b"".join(chunks)
    assert f.pending == 0


# ---- ctl JSON ----------------------------------------------------------------------------


def test_encode_ctl() -> None:
    fields = {"baud": 4800, "data_bits": 7, "parity": Parity.EVEN, "stop_bits": StopBits.TWO, "dtr": True}
    assert json.loads(encode_ctl(CtlKind.SET, fields)) == {
        "set": {"baud": 4800, "data_bits": 7, "parity": "even", "stop_bits": 2, "dtr": True}
    }
    assert encode_ctl(CtlKind.STATE, {"stop_bits": StopBits.ONE_POINT_FIVE, "cts": False}) == (
        b'{"state":{"cts":false,"stop_bits":1.5}}'
    )


FIELDS = {
    CtlKind.SET: st.fixed_dictionaries(
        {},
        optional={
            "baud": st.integers(1, 4_000_000),
            "data_bits": st.integers(5, 8),
            "parity": st.sampled_from(Parity),
            "stop_bits": st.sampled_from(StopBits),
            "dtr": st.booleans(),
            "rts": st.booleans(),
            "break": st.booleans(),
            "purge": st.booleans(),
        },
    ),
    CtlKind.STATE: st.fixed_dictionaries(
        {},
        optional={
            "baud": st.integers(1, 4_000_000),
            "parity": st.sampled_from(Parity),
            "cts": st.booleans(),
            "dsr": st.booleans(),
            "ri": st.booleans(),
            "dcd": st.booleans(),
        },
    ),
}


@given(st.sampled_from(CtlKind).flatmap(lambda k: st.tuples(st.just(k), FIELDS[k])))
def test_ctl_round_trip(case: tuple[CtlKind, dict[str, Any]]) -> None:
    kind, fields = case
    assert decode_ctl(encode_ctl(kind, fields)) == (kind, fields)


@given(st.binary(max_size=200))
def test_decode_ctl_never_raises_anything_else(payload: bytes) -> None:
    try:
        decode_ctl(payload)
    except CtlError:
        pass


def test_decode_ctl_ignores_unknown_fields() -> None:
    assert decode_ctl(b'{"set":{"baud":9600,"flow":"rtscts","cts":true}}') == (CtlKind.SET, {"baud": 9600})
    assert decode_ctl(b'{"state":{}}') == (CtlKind.STATE, {})


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"baud=9600", "not JSON"),
        (b"\xff", "not JSON"),
        (b"[]", "expected"),
        (b'{"set":{},"state":{}}', "expected"),
        (b'{"get":{}}', "unknown kind 'get'"),
        (b'{"a\\nFAKE\\u001b[2J":{}}', "unknown kind 'a\\\\nFAKE\\\\x1b"),  # escaped
        (b'{"set":5}', "not an object"),
        (b'{"set":{"baud":"9600"}}', "baud: expected an integer"),
        (b'{"set":{"baud":0}}', "baud: expected an integer"),
        (b'{"set":{"baud":true}}', "baud: expected an integer"),
        (b'{"set":{"data_bits":9}}', "data_bits"),
        (b'{"set":{"parity":"N"}}', "parity: expected one of none, odd, even, mark, space"),
        (b'{"set":{"stop_bits":3}}', "stop_bits: expected 1, 1.5 or 2"),
        (b'{"set":{"dtr":1}}', "dtr: expected true or false"),
        (b'{"set":{"x":"' + b"a" * 5000 + b'"}}', "longer than"),
    ],
)
def test_decode_ctl_errors(payload: bytes, why: str) -> None:
    with pytest.raises(CtlError, match=why):
        decode_ctl(payload)


SIGNALS = [
    # (role, message written to the port, ctl fields)
    (Role.CLIENT, SetBaud(4800), {"baud": 4800}),
    (Role.DEVICE, SetBaud(4800), {"baud": 4800}),
    (
        Role.CLIENT,
        SetLineControl(LineControl(7, Parity.ODD, None)),
        {"data_bits": 7, "parity": Parity.ODD},
    ),
    (Role.CLIENT, SetPins(Pin.DTR, Pin.DTR | Pin.RTS), {"dtr": True, "rts": False}),
    (Role.CLIENT, SetPins(Pin.BREAK, Pin.BREAK | Pin.CTS), {"break": True}),
    (Role.CLIENT, PurgeTx(), {"purge": True}),
    (
        Role.DEVICE,
        SetPins(Pin.CTS | Pin.DCD, Pin.CTS | Pin.DSR | Pin.DCD | Pin.DTR),
        {"cts": True, "dsr": False, "dcd": True},
    ),
    (Role.DEVICE, SetPins(Pin.DTR, Pin.DTR), {}),
    (Role.DEVICE, PurgeTx(), {}),
    (Role.CLIENT, SetLsr(0x10, 0x10), {}),
    (Role.CLIENT, LineData(b"x"), {}),
]


@pytest.mark.parametrize(("role", "msg", "fields"), SIGNALS)
def test_signal_fields(role: Role, msg: Message, fields: dict[str, Any]) -> None:
    assert signal_fields(role, msg) == fields


ALL_IN = In(sum(In))


def test_field_messages_device_side() -> None:
    fields = {
        "baud": 9600,
        "data_bits": 7,
        "stop_bits": StopBits.TWO,
        "dtr": True,
        "rts": False,
        "break": True,
        "purge": True,
    }
    assert field_messages(Role.DEVICE, fields, ALL_IN) == [
        RemoteBaudStatus(9600),
        RemoteLcStatus(LineControl(7, None, StopBits.TWO)),
        ModemStatus(Msr.DSR, Msr.DSR | Msr.CTS),
        BreakStatus(True),
        PurgeTxIn(),
    ]
    assert field_messages(Role.DEVICE, fields, In.RBR | In.DSR) == [
        RemoteBaudStatus(9600),
        ModemStatus(Msr.DSR, Msr.DSR),
    ]
    assert field_messages(Role.DEVICE, {"purge": False}, ALL_IN) == []


def test_field_messages_client_side() -> None:
    fields = {"baud": 4800, "parity": Parity.NONE, "cts": True, "dcd": False, "ri": True}
    assert field_messages(Role.CLIENT, fields, ALL_IN) == [
        LocalBaudStatus(4800),
        LocalLcStatus(LineControl(None, Parity.NONE, None)),
        ModemStatus(Msr.CTS | Msr.RI, Msr.CTS | Msr.RI | Msr.DCD),
    ]
    assert field_messages(Role.CLIENT, fields, In.NONE) == []
    assert field_messages(Role.CLIENT, {"dtr": True}, ALL_IN) == []


# ---- the port's queues (no broker) -------------------------------------------------------


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    """Run the callbacks scheduled so far (call_soon)."""
    loop.run_until_complete(asyncio.sleep(0))


def _queued(port: MqttPort) -> list[tuple[str, Any, bool]]:
    out = []
    for item in port._queue:
        payload = json.loads(item.payload) if item.topic.endswith("/ctl") else item.payload
        out.append((item.topic, payload, item.retain))
    return out


@needs_aiomqtt
def test_client_batches_requests_and_keeps_pulses(loop: Any) -> None:
    port = _port(["--role=client"], hub=_Hub(loop))
    port.write(SetBaud(4800), 1)
    port.write(SetPins(Pin.DTR | Pin.RTS, Pin.DTR | Pin.RTS), 1)
    port.write(SetBaud(4800), 1)  # unchanged: not sent again
    _turn(loop)
    port.write(SetPins(Pin.BREAK, Pin.BREAK), 1)
    port.write(SetPins(0, Pin.BREAK), 1)  # a break pulse stays two requests
    port.write(PurgeTx(), 1)
    _turn(loop)
    assert _queued(port) == [
        ("t/dev/ctl", {"set": {"baud": 4800, "dtr": True, "rts": True}}, False),
        ("t/dev/ctl", {"set": {"break": True}}, False),
        ("t/dev/ctl", {"set": {"break": False, "purge": True}}, False),
    ]


@needs_aiomqtt
def test_client_replays_requests_when_the_device_comes_back(loop: Any) -> None:
    port = _port(["--role=client"], hub=_Hub(loop))
    port.write(SetBaud(4800), 1)
    _turn(loop)
    port._queue.clear()
    port._status_in(b"online")  # first sight: nothing to replay
    port._status_in(b"offline")
    _turn(loop)
    assert _queued(port) == []
    port._status_in(b"online")
    _turn(loop)
    assert _queued(port) == [("t/dev/ctl", {"set": {"baud": 4800}}, False)]
    assert port.device_online is True


@needs_aiomqtt
def test_device_publishes_its_state_retained(loop: Any) -> None:
    port = _port([], hub=_Hub(loop))
    port.write(SetPins(Pin.CTS | Pin.DSR, Pin.CTS | Pin.DSR), 0)
    port.write(SetBaud(9600), 0)
    _turn(loop)
    port.write(SetBaud(9600), 0)  # no change, nothing published
    _turn(loop)
    port.write(SetPins(0, Pin.CTS), 0)
    _turn(loop)
    assert _queued(port) == [
        ("t/dev/ctl", {"state": {"baud": 9600, "cts": True, "dsr": True}}, True),
        ("t/dev/ctl", {"state": {"baud": 9600, "cts": False, "dsr": True}}, True),
    ]


@needs_aiomqtt
def test_device_turns_requests_into_status(loop: Any) -> None:
    hub = _Hub(loop)
    port = _port([], hub=hub)
    port.wanted = In.RBR | In.DSR
    port._ctl_in(b'{"set":{"baud":4800,"dtr":true,"parity":"odd"}}')
    port._ctl_in(b'{"state":{"baud":1200}}')  # its own state comes back: ignored
    port._ctl_in(b"garbage")
    assert hub.got == [RemoteBaudStatus(4800), ModemStatus(Msr.DSR, Msr.DSR)]
    assert port.bad_ctl == 1


@needs_aiomqtt
def test_client_reports_only_state_changes(loop: Any) -> None:
    hub = _Hub(loop)
    port = _port(["--role=client"], hub=hub)
    port.wanted = In.LBR | In.MODEM
    port._ctl_in(b'{"state":{"baud":4800,"cts":true,"dsr":true}}')
    port._ctl_in(b'{"state":{"baud":4800,"cts":false,"dsr":true}}')
    port._ctl_in(b'{"set":{"baud":1200}}')  # another client's request: ignored
    assert hub.got == [
        LocalBaudStatus(4800),
        ModemStatus(Msr.CTS | Msr.DSR, Msr.CTS | Msr.DSR),
        ModemStatus(0, Msr.CTS),
    ]


@needs_aiomqtt
def test_data_is_framed_queued_and_paused(loop: Any) -> None:
    hub = _Hub(loop)
    port = _port(["--write-limit=30"], hub=hub)
    port.write(LineData(b"$GPGGA*00\r\n$GPR"), 1)
    assert _queued(port) == [("t/dev/rx", b"$GPGGA*00\r\n", False)]
    assert port.queued_bytes() == 15
    port.write(LineData(b"MC*00\r\n"), 1)  # 22 bytes queued: over 2/3 of 30
    assert hub.got[-1:] == [FlowControl(True)]
    port.write(LineData(b"0123456789"), 1)  # 22 > 30? no: accepted
    port.write(LineData(b"more than the limit"), 1)  # 32 > 30 and not a flow-control source
    assert port.lost == 19
    port.close()
    assert port.lost == 19 + 32 and port.queued_bytes() == 0


@needs_aiomqtt
def test_bytes_mode_coalesces_on_the_loop(loop: Any) -> None:
    port = _port(["--frame=bytes", "--frame-bytes=6", "--frame-delay=5"], hub=_Hub(loop))
    port.write(LineData(b"ab"), 1)
    port.write(LineData(b"cd"), 1)
    assert _queued(port) == []
    loop.run_until_complete(asyncio.sleep(0.02))
    port.write(LineData(b"0123456789"), 1)
    assert _queued(port) == [("t/dev/rx", b"abcd", False), ("t/dev/rx", b"012345", False)]
    port.close()


@needs_aiomqtt
def test_received_data_is_held_while_paused(loop: Any) -> None:
    hub = _Hub(loop)
    port = _port(["--role=client"], hub=hub)
    port._data_in(b"one\n")
    port.write(FlowControl(True), 1)
    port._data_in(b"two\n")
    port._data_in(b"x" * HOLD_LIMIT_BYTES)
    assert port.dropped_in == HOLD_LIMIT_BYTES
    assert hub.got == [LineData(b"one\n")]
    port.write(FlowControl(False), 1)
    assert hub.got == [LineData(b"one\n"), LineData(b"two\n")]
    assert port.received == 2
