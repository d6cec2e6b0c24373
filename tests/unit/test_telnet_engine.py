"""The sans-IO telnet / RFC 2217 engine: codec tables, Q-method negotiation, pairs, properties."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters._telnet import (
    CISCO_BAUD,
    MAX_SUBNEG_BYTES,
    PARITY_TO_WIRE,
    SERVER_OFFSET,
    STOPBITS_TO_WIRE,
    WIRE_TO_PARITY,
    WIRE_TO_STOPBITS,
    Cmd,
    Command,
    ComPort,
    ComPortActive,
    ComPortCommand,
    Control,
    Malformed,
    Negotiation,
    Opt,
    OptionChanged,
    OptionState,
    Q,
    Role,
    ServerComPort,
    Subnegotiation,
    TelnetDecoder,
    TelnetEngine,
    decode_comport,
    encode_comport,
    escape,
    unescape,
)
from hub.messages import LineData, Parity, StopBits

IAC, SB, SE = b"\xff", b"\xff\xfa", b"\xff\xf0"
WILL, WONT, DO, DONT = (bytes((255, c)) for c in (Cmd.WILL, Cmd.WONT, Cmd.DO, Cmd.DONT))
NOP = b"\xff\xf1"


def neg(cmd: bytes, opt: int) -> bytes:
    return cmd + bytes((opt,))


def merged(tokens: list) -> list:
    """Adjacent LineData joined, empty ones dropped: the form split feeding must match."""
    out: list = []
    for t in tokens:
        if type(t) is LineData:
            if not t.data:
                continue
            if out and type(out[-1]) is LineData:
                out[-1] = LineData(out[-1].data + t.data)
                continue
        out.append(t)
    return out


def decode_all(chunks: list[bytes], **kw) -> list:
    d = TelnetDecoder(**kw)
    tokens: list = []
    for c in chunks:
        tokens += d.feed(c)
    return merged(tokens)


# ---- constants ---------------------------------------------------------------------------


def test_server_codes_are_derived() -> None:
    assert SERVER_OFFSET == 100
    assert [int(c) for c in ServerComPort] == [c + 100 for c in ComPort]
    assert ServerComPort.SERVER_SET_BAUDRATE == 101
    assert ServerComPort.SERVER_PURGE_DATA == 112


def test_value_maps_and_reverses() -> None:
    assert [PARITY_TO_WIRE[p] for p in Parity] == [1, 2, 3, 4, 5]
    assert STOPBITS_TO_WIRE == {StopBits.ONE: 1, StopBits.TWO: 2, StopBits.ONE_POINT_FIVE: 3}
    assert all(WIRE_TO_PARITY[w] is p for p, w in PARITY_TO_WIRE.items())
    assert all(WIRE_TO_STOPBITS[w] is s for s, w in STOPBITS_TO_WIRE.items())
    assert [c.value for c in Control] == list(range(20))


# ---- IAC doubling --------------------------------------------------------------------------

ESCAPE_CASES = [
    (b"", b""),
    (b"abc", b"abc"),
    (b"\xff", b"\xff\xff"),
    (b"a\xffb\xff", b"a\xff\xffb\xff\xff"),
    (b"\xff" * 3, b"\xff" * 6),
    (b"\xff" * 1000, b"\xff" * 2000),  # dense: long runs sliced
    ((b"\xff" * 70 + b"x") * 5, (b"\xff" * 140 + b"x") * 5),
    (b"\xff\x00" * 50, b"\xff\xff\x00" * 50),  # dense, short runs
    (b"\xff" * 4096, b"\xff" * 8192),  # nothing but IACs: doubled at once
    (bytes(range(256)) * 4, (bytes(range(255)) + b"\xff\xff") * 4),  # sparse: one replace
    ((b"." * 63 + b"\xff") * 20, (b"." * 63 + b"\xff\xff") * 20),  # one in 64: at the replace cap
    (b"." * 4000 + b"\xff" * 100 + b"a\xff" * 60, b"." * 4000 + b"\xff" * 200 + b"a\xff\xff" * 60),
]


@pytest.mark.parametrize(("plain", "wire"), ESCAPE_CASES)
def test_escape_unescape(plain: bytes, wire: bytes) -> None:
    assert escape(plain) == wire
    assert unescape(wire) == plain


@pytest.mark.parametrize(
    "wire", [b"\xff", b"a\xffb", b"\xff" * 3, b"\xff" * 129, b"\xff" * 128 + b"\xff\xf1"]
)
def test_unescape_sees_commands(wire: bytes) -> None:
    assert unescape(wire) is None


# ---- decoder: message by message -----------------------------------------------------------

# (name, chunks fed in order, tokens expected)
DECODER_CASES = [
    ("empty", [b""], []),
    ("plain", [b"hello"], [LineData(b"hello")]),
    ("doubled iac", [b"a\xff\xffb"], [LineData(b"a\xffb")]),
    ("nop", [NOP], [Command(Cmd.NOP)]),
    ("brk between data", [b"x\xff\xf3y"], [LineData(b"x"), Command(Cmd.BRK), LineData(b"y")]),
    ("will", [neg(WILL, 1)], [Negotiation(Cmd.WILL, 1)]),
    ("dont", [neg(DONT, 44)], [Negotiation(Cmd.DONT, 44)]),
    ("subneg", [SB + b"\x18\x01" + SE], [Subnegotiation(24, b"\x01")]),
    # ser2net's answer for a baud rate of 255: the 0xFF inside SB is doubled
    (
        "subneg iac",
        [b"\xff\xfa\x2c\x65\x00\x00\x00\xff\xff\xff\xf0"],
        [Subnegotiation(44, b"\x65\x00\x00\x00\xff")],
    ),
    ("iac run then cmd", [b"\xff\xff\xff\xfb\x03"], [LineData(b"\xff"), Negotiation(Cmd.WILL, 3)]),
    ("even run", [b"\xff" * 4 + b"z"], [LineData(b"\xff\xffz")]),
    ("long even run + cmd", [b"\xff" * 200 + NOP], [LineData(b"\xff" * 100), Command(Cmd.NOP)]),
    ("long odd run", [b"\xff" * 201 + b"\xf1"], [LineData(b"\xff" * 100), Command(Cmd.NOP)]),
    ("unknown code", [b"\xff\x41z"], [Command(0x41), LineData(b"z")]),
    (
        "stray se",
        [b"a" + SE + b"b"],
        [LineData(b"a"), Malformed("IAC SE outside a subnegotiation"), LineData(b"b")],
    ),
    ("empty subneg", [SB + SE], [Malformed("empty subnegotiation")]),
    (
        "truncated subneg resyncs",
        [SB + b"\x2c\x01\x00" + neg(WILL, 1) + b"x"],
        [
            Malformed("IAC WILL inside a subnegotiation, which is dropped"),
            Negotiation(Cmd.WILL, 1),
            LineData(b"x"),
        ],
    ),
    # option byte 255: the run after it starts fresh
    ("do 255 then cmd", [neg(DO, 255) + b"\xff\x41"], [Negotiation(Cmd.DO, 255), Command(0x41)]),
    (
        "do 255 then odd run",
        [neg(DO, 255) + b"\xff\xff\xffa"],
        [Negotiation(Cmd.DO, 255), LineData(b"\xff"), Command(ord("a"))],
    ),
    ("do 255 then pair", [neg(DO, 255) + b"\xff\xffa"], [Negotiation(Cmd.DO, 255), LineData(b"\xffa")]),
    # incomplete tails carried over
    ("split iac", [b"a\xff", b"\xf1b"], [LineData(b"a"), Command(Cmd.NOP), LineData(b"b")]),
    ("split pair", [b"a\xff", b"\xffb"], [LineData(b"a\xffb")]),
    ("split negotiation", [WILL, b"\x01"], [Negotiation(Cmd.WILL, 1)]),
    ("split subneg", [SB + b"\x18", b"\x01\xff", b"\xf0"], [Subnegotiation(24, b"\x01")]),
    ("split odd run", [b"\xff\xff\xff", b"\xfb\x00"], [LineData(b"\xff"), Negotiation(Cmd.WILL, 0)]),
]


@pytest.mark.parametrize(
    ("chunks", "expected"), [c[1:] for c in DECODER_CASES], ids=[c[0] for c in DECODER_CASES]
)
def test_decoder(chunks: list[bytes], expected: list) -> None:
    assert decode_all(chunks) == expected


def test_decoder_state_between_feeds() -> None:
    d = TelnetDecoder()
    assert d.feed(SB + b"\x2c\x01") == []
    assert d.in_sequence and d.buffered_bytes == 2
    assert d.feed(b"\x02" + SE + b"ok") == [Subnegotiation(44, b"\x01\x02"), LineData(b"ok")]
    assert not d.in_sequence and d.buffered_bytes == 0


def test_long_subnegotiation_dropped_once_and_resynced() -> None:
    d = TelnetDecoder(max_subneg_bytes=8)
    tokens = d.feed(SB + b"\x2c" + b"x" * 5)
    assert tokens == []
    tokens = d.feed(b"y" * 20)
    assert tokens == [Malformed("subnegotiation longer than 8 bytes dropped")]
    assert d.buffered_bytes == 0
    assert d.feed(b"z" * 1000) == []  # still inside, nothing buffered, logged once
    assert d.buffered_bytes == 0
    assert d.feed(SE + b"data" + SB + b"\x18\x01" + SE) == [LineData(b"data"), Subnegotiation(24, b"\x01")]


def test_subnegotiation_at_the_bound_is_kept() -> None:
    payload = b"\x2c" + b"\x00" * (MAX_SUBNEG_BYTES - 1)
    assert decode_all([SB + payload + SE]) == [Subnegotiation(44, payload[1:])]


# ---- Q method ------------------------------------------------------------------------------

# (state of the peer's side, we accept, received) -> (new state, our answer)
RECEIVE_CASES = [
    (Q.NO, True, Cmd.WILL, Q.YES, Cmd.DO),
    (Q.NO, False, Cmd.WILL, Q.NO, Cmd.DONT),
    (Q.YES, True, Cmd.WILL, Q.YES, None),
    (Q.WANTNO, True, Cmd.WILL, Q.NO, None),  # error: DONT answered by WILL
    (Q.WANTNO_OPPOSITE, True, Cmd.WILL, Q.YES, None),
    (Q.WANTYES, True, Cmd.WILL, Q.YES, None),
    (Q.WANTYES_OPPOSITE, True, Cmd.WILL, Q.WANTNO, Cmd.DONT),
    (Q.NO, True, Cmd.WONT, Q.NO, None),
    (Q.YES, True, Cmd.WONT, Q.NO, Cmd.DONT),
    (Q.WANTNO, True, Cmd.WONT, Q.NO, None),
    (Q.WANTNO_OPPOSITE, True, Cmd.WONT, Q.WANTYES, Cmd.DO),
    (Q.WANTYES, True, Cmd.WONT, Q.NO, None),
    (Q.WANTYES_OPPOSITE, True, Cmd.WONT, Q.NO, None),
]


@pytest.mark.parametrize(("state", "accept", "received", "new", "answer"), RECEIVE_CASES)
def test_q_receive_remote(state: Q, accept: bool, received: Cmd, new: Q, answer: Cmd | None) -> None:
    o = OptionState(0, accept_remote=accept)
    o.remote = state
    assert o.receive(received) == answer
    assert o.remote is new and o.local is Q.NO


@pytest.mark.parametrize(("state", "accept", "received", "new", "answer"), RECEIVE_CASES)
def test_q_receive_local_mirrors(state: Q, accept: bool, received: Cmd, new: Q, answer: Cmd | None) -> None:
    mirror = {Cmd.WILL: Cmd.DO, Cmd.WONT: Cmd.DONT, Cmd.DO: Cmd.WILL, Cmd.DONT: Cmd.WONT, None: None}
    o = OptionState(0, accept_local=accept)
    o.local = state
    assert o.receive(mirror[received]) == mirror[answer]
    assert o.local is new and o.remote is Q.NO


# (state, enable?) -> (new state, sent)
REQUEST_CASES = [
    (Q.NO, True, Q.WANTYES, Cmd.DO),
    (Q.YES, True, Q.YES, None),
    (Q.WANTNO, True, Q.WANTNO_OPPOSITE, None),
    (Q.WANTYES_OPPOSITE, True, Q.WANTYES, None),
    (Q.YES, False, Q.WANTNO, Cmd.DONT),
    (Q.NO, False, Q.NO, None),
    (Q.WANTYES, False, Q.WANTYES_OPPOSITE, None),
    (Q.WANTNO_OPPOSITE, False, Q.WANTNO, None),
]


@pytest.mark.parametrize(("state", "enable", "new", "sent"), REQUEST_CASES)
def test_q_request(state: Q, enable: bool, new: Q, sent: Cmd | None) -> None:
    o = OptionState(0)
    o.remote = state
    assert o.request(False, enable) == sent
    assert o.remote is new


# ---- engine --------------------------------------------------------------------------------

START_CASES = [
    (Role.SERVER, False, neg(DO, 44) + neg(WILL, 0) + neg(DO, 0)),
    (Role.CLIENT, False, neg(WILL, 44) + neg(WILL, 0) + neg(DO, 0)),
    (Role.NONE, False, neg(WILL, 0) + neg(DO, 0)),
    (Role.SERVER, True, neg(DO, 44) + neg(WILL, 0) + neg(DO, 0) + neg(WILL, 1) + neg(WILL, 3)),
]


@pytest.mark.parametrize(("role", "suppress_echo", "expected"), START_CASES)
def test_start(role: Role, suppress_echo: bool, expected: bytes) -> None:
    assert TelnetEngine(role, suppress_echo=suppress_echo).start() == expected


# (role, peer bytes, events, our answer) after start(); see rfc2217-peers.md 1.5 for sequences
ENGINE_CASES = [
    (
        "pyserial client to our server",
        Role.SERVER,
        neg(DO, 1) + neg(WILL, 3) + neg(DO, 3) + neg(DO, 44) + neg(WILL, 44),
        [
            OptionChanged(3, False, True),
            OptionChanged(3, True, True),
            OptionChanged(44, True, True),
            ComPortActive(True),
            OptionChanged(44, False, True),
        ],
        neg(WONT, 1) + neg(DO, 3) + neg(WILL, 3) + neg(WILL, 44),
    ),
    (
        "gensio client to our server",
        Role.SERVER,
        neg(WILL, 44) + neg(DONT, 1) + neg(DONT, 3) + neg(WILL, 0),
        [OptionChanged(44, False, True), ComPortActive(True), OptionChanged(0, False, True)],
        b"",
    ),
    (
        "ser2net server to our client",
        Role.CLIENT,
        neg(WILL, 3) + neg(DO, 3) + neg(WILL, 1) + neg(DONT, 1) + neg(DO, 0) + neg(WILL, 0) + neg(DO, 44),
        [
            OptionChanged(3, False, True),
            OptionChanged(3, True, True),
            OptionChanged(1, False, True),
            OptionChanged(0, True, True),
            OptionChanged(0, False, True),
            OptionChanged(44, True, True),
            ComPortActive(True),
        ],
        neg(DO, 3) + neg(WILL, 3) + neg(DO, 1),
    ),
    (
        "pyserial server: WILL 44 before DO 44",
        Role.CLIENT,
        neg(WILL, 1) + neg(WILL, 3) + neg(DO, 0) + neg(WILL, 44) + neg(DO, 44),
        [
            OptionChanged(1, False, True),
            OptionChanged(3, False, True),
            OptionChanged(0, True, True),
            OptionChanged(44, False, True),
            ComPortActive(True),
            OptionChanged(44, True, True),
        ],
        neg(DO, 1) + neg(DO, 3) + neg(DO, 44),
    ),
    ("server refuses COM-PORT", Role.CLIENT, neg(DONT, 44), [], b""),
    (
        "plain telnet refuses COM-PORT",
        Role.NONE,
        neg(WILL, 44) + neg(DO, 44),
        [],
        neg(DONT, 44) + neg(WONT, 44),
    ),
    (
        "unknown options refused once",
        Role.NONE,
        neg(WILL, 99) + neg(DO, 99) + neg(WONT, 99),
        [],
        neg(DONT, 99) + neg(WONT, 99),
    ),
    (
        "ttype",
        Role.NONE,
        neg(DO, 24) + SB + b"\x18\x01" + SE,
        [OptionChanged(24, True, True)],
        neg(WILL, 24) + SB + b"\x18\x00UNKNOWN" + SE,
    ),
    ("ttype send while off", Role.NONE, SB + b"\x18\x01" + SE, [], b""),
    ("nop ignored, brk reported", Role.NONE, NOP + b"\xff\xf3", [Command(Cmd.BRK)], b""),
    ("unknown command ignored", Role.NONE, b"\xff\x10", [], b""),
    ("echo refused by default", Role.NONE, neg(DO, 1), [], neg(WONT, 1)),
    (
        "binary toggled",
        Role.NONE,
        neg(DO, 0) + neg(DONT, 0),
        [OptionChanged(0, True, True), OptionChanged(0, True, False)],
        neg(WONT, 0),
    ),
]


@pytest.mark.parametrize(
    ("role", "peer", "events", "answer"), [c[1:] for c in ENGINE_CASES], ids=[c[0] for c in ENGINE_CASES]
)
def test_engine(role: Role, peer: bytes, events: list, answer: bytes) -> None:
    e = TelnetEngine(role)
    e.start()
    assert e.feed(peer) == events
    assert e.data_to_send() == answer


def test_comport_commands_processed_before_negotiation() -> None:
    e = TelnetEngine(Role.SERVER)
    assert e.feed(encode_comport(ComPort.SET_BAUDRATE, 9600, server=False)) == [
        ComPortCommand(ComPort.SET_BAUDRATE, 9600)
    ]
    assert not e.comport_active


def test_terminal_type_disabled() -> None:
    e = TelnetEngine(Role.NONE, terminal="")
    e.feed(neg(DO, 24))
    assert e.data_to_send() == neg(WONT, 24)


def test_cr_padding_only_without_binary() -> None:
    e = TelnetEngine(Role.NONE)
    assert e.send_data(b"a\rb\xff", b"\x00") == b"a\r\x00b\xff\xff"
    e.start()
    e.feed(neg(DO, 0))
    assert e.send_data(b"a\rb", b"\x00") == b"a\rb"


def test_protocol_errors_are_warnings_the_hub_limits(caplog: pytest.LogCaptureFixture) -> None:
    # Each is a warning; hub.logs.RepeatLimiter bounds them in a running hub.
    e = TelnetEngine(Role.NONE)
    with caplog.at_level(logging.DEBUG, logger="filters._telnet"):
        e.feed(SE + SE + b"\xff\x10")
    assert e.errors == 3
    records = [r for r in caplog.records if "telnet peer" in r.message]
    assert [r.levelno for r in records] == [logging.WARNING] * 3
    assert records[-1].message.endswith("(error 3)")


def test_send_comport_misuse_raises() -> None:
    with pytest.raises(ValueError):
        TelnetEngine(Role.NONE).send_comport(ComPort.SET_BAUDRATE, 9600)
    with pytest.raises(ValueError):
        TelnetEngine(Role.CLIENT).send_comport(ComPort.SET_DATASIZE, 256)
    with pytest.raises(ValueError):
        TelnetEngine(Role.CLIENT).send_comport(ComPort.SET_BAUDRATE, None)


# ---- RFC 2217 payloads ---------------------------------------------------------------------

# (command, value, client payload after 44 and the code) - the server's is the same with code+100
COMPORT_CASES = [
    (ComPort.SIGNATURE, b"", b""),
    (ComPort.SIGNATURE, b"hub \xff", b"hub \xff\xff"),
    (ComPort.SET_BAUDRATE, 0, b"\x00\x00\x00\x00"),
    (ComPort.SET_BAUDRATE, 9600, b"\x00\x00\x25\x80"),
    (ComPort.SET_BAUDRATE, 255, b"\x00\x00\x00\xff\xff"),
    (ComPort.SET_DATASIZE, 7, b"\x07"),
    (ComPort.SET_PARITY, 3, b"\x03"),
    (ComPort.SET_STOPSIZE, 3, b"\x03"),
    *[(ComPort.SET_CONTROL, c.value, bytes((c.value,))) for c in Control],
    (ComPort.NOTIFY_LINESTATE, 0x10, b"\x10"),
    (ComPort.NOTIFY_LINESTATE, None, b""),
    (ComPort.NOTIFY_MODEMSTATE, 0xFF, b"\xff\xff"),
    (ComPort.NOTIFY_MODEMSTATE, None, b""),
    (ComPort.FLOWCONTROL_SUSPEND, None, b""),
    (ComPort.FLOWCONTROL_RESUME, None, b""),
    (ComPort.SET_LINESTATE_MASK, 0x1E, b"\x1e"),
    (ComPort.SET_MODEMSTATE_MASK, 0xF0, b"\xf0"),
    (ComPort.PURGE_DATA, 3, b"\x03"),
]


@pytest.mark.parametrize(("cmd", "value", "body"), COMPORT_CASES)
@pytest.mark.parametrize("server", [False, True])
def test_comport_codec(cmd: ComPort, value: object, body: bytes, server: bool) -> None:
    code = bytes((cmd + (SERVER_OFFSET if server else 0),))
    wire = SB + b"\x2c" + code + body + SE
    assert encode_comport(cmd, value, server=server) == wire  # type: ignore[arg-type]
    # the receiving side of the other role decodes it
    receiver = TelnetEngine(Role.CLIENT if server else Role.SERVER)
    assert receiver.feed(wire) == [ComPortCommand(cmd, value)]  # type: ignore[arg-type]
    assert receiver.errors == 0


# (payload after the option byte, from the server?, result)
DECODE_QUIRKS = [
    # sredird: SET-BAUDRATE answer with 4 extra zero bytes
    (b"\x65\x00\x00\x25\x80\x00\x00\x00\x00", True, ComPortCommand(ComPort.SET_BAUDRATE, 9600)),
    # Cisco IOS: 1-byte baud-rate index
    (b"\x01\x08", False, ComPortCommand(ComPort.SET_BAUDRATE, CISCO_BAUD[8])),
    (b"\x01\x00", False, ComPortCommand(ComPort.SET_BAUDRATE, 0)),
    (b"\x01\x09", False, Malformed("COM-PORT SET_BAUDRATE with a 1-byte value")),
    (b"\x01\x00\x01", False, Malformed("COM-PORT SET_BAUDRATE with a 2-byte value")),
    (b"\x02", False, Malformed("COM-PORT SET_DATASIZE without a value")),
    (b"\x05\x08\x00", False, ComPortCommand(ComPort.SET_CONTROL, 8)),  # extra bytes ignored
    (b"", False, Malformed("COM-PORT subnegotiation without a command")),
    (b"\x0d", False, Malformed("unknown COM-PORT command 13 from the client")),
    (b"\x71", True, Malformed("unknown COM-PORT command 113 from the access server")),
    (b"\x65\x00\x00\x25\x80", False, Malformed("COM-PORT command 101 is not one the client sends")),
    (b"\x01\x00\x00\x25\x80", True, Malformed("COM-PORT command 1 is not one the access server sends")),
]


@pytest.mark.parametrize(("payload", "from_server", "result"), DECODE_QUIRKS)
def test_decode_comport_quirks(payload: bytes, from_server: bool, result: object) -> None:
    assert decode_comport(payload, from_server=from_server) == result


# ---- client engine against server engine ---------------------------------------------------


class EnginePair:
    """A client and a server engine joined by an in-memory link (h11's ConnectionPair)."""

    def __init__(self) -> None:
        self.client = TelnetEngine(Role.CLIENT, logger=logging.getLogger("test.client"))
        self.server = TelnetEngine(Role.SERVER, suppress_echo=True, logger=logging.getLogger("test.server"))
        self.events: dict[TelnetEngine, list] = {self.client: [], self.server: []}
        self.rounds = 0
        self.send(self.server, self.server.start())
        self.send(self.client, self.client.start())

    def peer(self, e: TelnetEngine) -> TelnetEngine:
        return self.server if e is self.client else self.client

    def send(self, sender: TelnetEngine, data: bytes) -> None:
        """Deliver `data` to the other side, then pump automatic replies until quiet."""
        while data:
            self.rounds += 1
            assert self.rounds < 50, "negotiation does not converge"
            receiver = self.peer(sender)
            self.events[receiver] += receiver.feed(data)
            sender, data = receiver, receiver.data_to_send()

    def take(self, e: TelnetEngine) -> list:
        events, self.events[e] = merged(self.events[e]), []
        return events


@pytest.fixture
def pair() -> EnginePair:
    return EnginePair()


def test_pair_negotiates(pair: EnginePair) -> None:
    for e in (pair.client, pair.server):
        assert e.comport_active
        assert e.local_enabled(Opt.BINARY) and e.remote_enabled(Opt.BINARY)
        assert ComPortActive(True) in pair.take(e)
        assert e.errors == 0
    assert pair.server.local_enabled(Opt.ECHO) and pair.client.remote_enabled(Opt.ECHO)


@pytest.mark.parametrize("client_sends", [True, False])
@pytest.mark.parametrize(("cmd", "value", "_body"), COMPORT_CASES)
def test_pair_comport(
    pair: EnginePair, client_sends: bool, cmd: ComPort, value: object, _body: bytes
) -> None:
    pair.take(pair.client), pair.take(pair.server)
    sender = pair.client if client_sends else pair.server
    pair.send(sender, sender.send_comport(cmd, value))  # type: ignore[arg-type]
    assert pair.take(pair.peer(sender)) == [ComPortCommand(cmd, value)]  # type: ignore[arg-type]


@pytest.mark.parametrize("client_sends", [True, False])
def test_pair_data(pair: EnginePair, client_sends: bool) -> None:
    pair.take(pair.client), pair.take(pair.server)
    sender = pair.client if client_sends else pair.server
    data = bytes(range(256)) * 3 + b"\xff" * 300 + b"\r\n"
    pair.send(sender, sender.send_data(data))
    assert pair.take(pair.peer(sender)) == [LineData(data)]


# ---- properties ----------------------------------------------------------------------------

any_bytes = st.binary(max_size=600)
TELNET_BYTES = [b"\xff", b"\xfa", b"\xf0", b"\xfb", b",", b"\x01", b"a", b"\x00"]
iac_heavy = st.lists(st.sampled_from(TELNET_BYTES), max_size=300).map(b"".join)
# long IAC runs take the scanner's other path (runs >= 64 are measured, not searched)
long_runs = st.lists(
    st.one_of(st.sampled_from(TELNET_BYTES), st.integers(60, 140).map(lambda n: b"\xff" * n)), max_size=12
).map(b"".join)
streams = st.one_of(any_bytes, iac_heavy, long_runs)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(streams, st.lists(st.integers(min_value=0), max_size=8), st.sampled_from(list(Role)))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int], role: Role) -> None:
    e = TelnetEngine(role, suppress_echo=True)
    e.start()
    for chunk in split(data, cuts):
        e.feed(chunk)
        e.data_to_send()


@given(streams, st.lists(st.integers(min_value=0), max_size=8))
def test_split_feeding_equals_whole(data: bytes, cuts: list[int]) -> None:
    assert decode_all(split(data, cuts), max_subneg_bytes=32) == decode_all([data], max_subneg_bytes=32)


@given(streams)
def test_escape_then_decode_gives_data(data: bytes) -> None:
    assert unescape(escape(data)) == data
    assert decode_all([escape(data)]) == ([LineData(data)] if data else [])


tokens = st.one_of(
    st.binary(min_size=1, max_size=50).map(LineData),
    st.sampled_from([c for c in range(241, 250)]).map(Command),
    st.builds(Negotiation, st.sampled_from([Cmd.WILL, Cmd.WONT, Cmd.DO, Cmd.DONT]), st.integers(0, 255)),
    st.builds(Subnegotiation, st.integers(0, 255), st.binary(max_size=40)),
)


def encode_token(t: object) -> bytes:
    if type(t) is LineData:
        return escape(t.data)
    if type(t) is Command:
        return bytes((255, t.cmd))
    if type(t) is Negotiation:
        return bytes((255, t.cmd, t.option))
    assert type(t) is Subnegotiation
    return SB + escape(bytes((t.option,)) + t.payload) + SE


@given(st.lists(tokens, max_size=20), st.lists(st.integers(min_value=0), max_size=6))
def test_encode_then_decode_tokens(toks: list, cuts: list[int]) -> None:
    wire = b"".join(map(encode_token, toks))
    assert decode_all(split(wire, cuts)) == merged(toks)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=50)
@given(
    st.lists(
        st.binary(min_size=1, max_size=2000).map(lambda b: b.replace(b"\xff", b"")), min_size=1, max_size=30
    )
)
def test_endless_subnegotiation_stays_bounded(chunks: list[bytes]) -> None:
    e = TelnetEngine(Role.SERVER)
    e.feed(SB + b"\x2c\x00")
    for c in chunks:
        e.feed(c)
        assert e.buffered_bytes <= MAX_SUBNEG_BYTES
    events = e.feed(SE + b"ok")
    assert events[-1] == LineData(b"ok")
    too_long = 2 + sum(map(len, chunks)) > MAX_SUBNEG_BYTES
    assert (e.errors, len(events)) == ((1, 1) if too_long else (0, 2))


@given(st.sampled_from(COMPORT_CASES), st.integers(0, 2**32 - 1), st.booleans())
def test_comport_roundtrip(case: tuple, number: int, server: bool) -> None:
    cmd, value, _ = case
    if isinstance(value, int):
        value = number if cmd is ComPort.SET_BAUDRATE else number & 0xFF
    wire = encode_comport(cmd, value, server=server)
    tokens = TelnetDecoder().feed(wire)
    assert len(tokens) == 1 and type(tokens[0]) is Subnegotiation
    assert decode_comport(tokens[0].payload, from_server=server) == ComPortCommand(cmd, value)
