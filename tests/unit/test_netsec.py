"""Tests of hub.netsec: option values, access lists, limits, log limiting, TLS contexts.

No sockets: TLS contexts are checked by their settings and by handshakes over
in-memory BIOs.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import warnings
from pathlib import Path

import pytest

from hub import netsec as _netsec
from hub.errors import UsageError
from hub.netsec import (
    AccessList,
    ConnectionLimit,
    Gate,
    ListenerPolicy,
    LogLimiter,
    RateLimiter,
    TlsContexts,
    TlsSettings,
    Verdict,
    Verify,
    exposure_warning,
    parse_cidr_list,
    peer_ip,
    rate_key,
    tls_reason,
)
from tests.tlscerts import Pki, available_backends, make_pki, pki_or_skip

# ---- option values ---------------------------------------------------------------------


def nets(*texts: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        (" , ", ()),
        ("127.0.0.1", nets("127.0.0.1/32")),
        ("10.0.0.0/8, 192.168.1.0/24", nets("10.0.0.0/8", "192.168.1.0/24")),
        ("::1", nets("::1/128")),
        ("[::1]", nets("::1/128")),
        ("fd00::/8,127.0.0.0/8", nets("fd00::/8", "127.0.0.0/8")),
        ("0.0.0.0/0", nets("0.0.0.0/0")),
    ],
)
def test_parse_cidr_list(text: str, expected: tuple[object, ...]) -> None:
    assert parse_cidr_list(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.1.2.3/8", "Invalid address or network '10.1.2.3/8' (10.1.2.3/8 has host bits set)"),
        ("host.example", "Invalid address or network 'host.example'"),
        ("10.0.0.0/33", "Invalid address or network '10.0.0.0/33'"),
        ("127.0.0.1,1.2.3.456", "Invalid address or network '1.2.3.456'"),
        ("fe80::1%eth0", "Invalid address or network 'fe80::1%eth0' (no %scope in address lists)"),
    ],
)
def test_parse_cidr_list_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_cidr_list(text)
    assert info.value.text == message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("--tls-verify", "none", Verify.NONE),
        ("--tls-verify", "N", Verify.NONE),
        ("--tls-verify", "Peer", Verify.PEER),
        ("--tls-server-name", "Gps.Example.org", "gps.example.org"),
        ("--tls-server-name", "127.0.0.1", "127.0.0.1"),
        ("--tls-server-name", "", None),
        ("--tls-timeout", "2.5", 2.5),
        ("--tls-ca", "system", "system"),
        ("--tls-ca", "", None),
        ("--tls-cert", " ", None),
        ("--max-rate", "0", 0),
        ("--max-rate", "50", 50),
        ("--max-connections", "3", 3),
    ],
)
def test_converters(name: str, text: str, expected: object) -> None:
    assert _netsec.CONVERTERS[name](text) == expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("--tls-verify", "maybe", "Invalid TLS verification (peer or none)"),
        ("--tls-verify", "", "Invalid TLS verification (peer or none)"),
        ("--tls-server-name", "bad name", "Invalid TLS server name"),
        ("--tls-timeout", "0", "Invalid TLS timeout (more than 0, at most 3600 seconds)"),
        ("--tls-timeout", "soon", "Invalid TLS timeout"),
        ("--max-rate", "-1", "Invalid connection rate"),
        ("--max-connections", "0", "Invalid connection limit"),
        ("--max-connections", "many", "Invalid connection limit"),
        ("--tls-cert", "/nonexistent/cert.pem", "Cannot read the TLS certificate file /nonexistent/cert.pem"),
        ("--tls-key", "/nonexistent/k.key", "Cannot read the TLS key file /nonexistent/k.key"),
        ("--tls-ca", "/nonexistent/ca.pem", "Cannot read the TLS CA file /nonexistent/ca.pem"),
    ],
)
def test_converter_errors(name: str, text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        _netsec.CONVERTERS[name](text)
    assert info.value.text.startswith(message)
    assert "\n" not in info.value.text


def test_unreadable_file_names_the_reason(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"Cannot read the TLS certificate file .*: Is a directory"):
        _netsec.CONVERTERS["--tls-cert"](str(tmp_path))


def test_defaults_cover_every_converter() -> None:
    assert set(_netsec.DEFAULTS) == set(_netsec.CONVERTERS)


# ---- addresses and access lists ------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::1", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("/run/sock", None),
        ("", None),
    ],
)
def test_peer_ip(host: str, expected: str | None) -> None:
    addr = peer_ip(host)
    assert (str(addr) if addr is not None else None) == expected


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ],
)
def test_rate_key(host: str, key: str) -> None:
    assert rate_key(peer_ip(host), host) == key


LAN = "192.168.1.0/24,fd00::/8"
# (allow, deny, peer, permitted)
ACCESS_CASES = [
    ("", "", "203.0.113.9", True),
    ("", "", "::1", True),
    (LAN, "", "192.168.1.77", True),
    (LAN, "", "192.168.2.1", False),
    (LAN, "", "::ffff:192.168.1.77", True),  # a dual-stack socket's IPv4 peer
    (LAN, "", "fd12:3456::1", True),
    (LAN, "", "fe80::1%eth0", False),
    (LAN, "", "2001:db8::1", False),
    (LAN, "192.168.1.66/32", "192.168.1.66", False),  # deny wins
    (LAN, "192.168.1.66/32", "192.168.1.67", True),
    ("", "127.0.0.1", "127.0.0.1", False),
    ("", "127.0.0.1", "127.0.0.2", True),
    ("", "127.0.0.1", "::ffff:127.0.0.1", False),
    ("", "::/0", "::1", False),
    ("", "::/0", "127.0.0.1", True),  # IPv6 entries never match IPv4 peers
    ("0.0.0.0/0", "", "::1", False),
    ("127.0.0.0/8,::1", "", "::1", True),
    ("", "", "/run/sock", True),
    ("127.0.0.1", "", "/run/sock", False),
]


@pytest.mark.parametrize(("allow", "deny", "peer", "permitted"), ACCESS_CASES)
def test_access_list(allow: str, deny: str, peer: str, permitted: bool) -> None:
    acl = AccessList(parse_cidr_list(allow), parse_cidr_list(deny))
    assert acl.permits(peer_ip(peer)) is permitted


def test_access_list_text() -> None:
    assert str(AccessList()) == "everybody"
    assert not AccessList()
    acl = AccessList(nets("10.0.0.0/8"), nets("10.9.0.0/16"))
    assert acl
    assert str(acl) == "--allow=10.0.0.0/8 --deny=10.9.0.0/16"


# ---- the rate limiter (a fake clock: times are passed in) -----------------------------


def test_rate_limiter_burst_then_rate() -> None:
    rl = RateLimiter(5)
    assert [rl.allow("a", 100.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert not rl.allow("a", 100.1)  # 0.1 s refills half a token
    assert rl.allow("a", 100.3)  # ... now one whole token
    assert not rl.allow("a", 100.3)
    assert rl.allow("b", 100.3)  # other addresses are not affected
    # Idle for a second refills the whole burst, no more.
    assert [rl.allow("a", 110.0) for _ in range(6)] == [True] * 5 + [False]


def test_rate_limiter_steady_rate() -> None:
    rl = RateLimiter(10)
    t = 0.0
    allowed = 0
    for _ in range(1000):  # 100 attempts per second for 10 s
        t += 0.01
        allowed += rl.allow("x", t)
    assert 100 <= allowed <= 111  # the burst of 10, then 10 per second


def test_rate_limiter_fractional_rate() -> None:
    rl = RateLimiter(0.5)  # one attempt every two seconds
    assert rl.allow("a", 0.0)
    assert not rl.allow("a", 1.0)
    assert rl.allow("a", 2.5)


def test_rate_limiter_table_is_bounded() -> None:
    rl = RateLimiter(2, max_keys=100)
    for i in range(10_000):
        rl.allow(f"10.0.{i // 256}.{i % 256}", i * 0.0001)
    assert len(rl) <= 100
    # A key that is still limited survives pruning of refilled keys.
    rl = RateLimiter(1, max_keys=3)
    assert rl.allow("hot", 0.0)
    assert not rl.allow("hot", 0.1)
    for k in ("a", "b"):
        rl.allow(k, 0.1)
    rl.allow("c", 5.0)  # full table: "a" and "b" refilled long ago and go
    assert len(rl) <= 3


def test_rate_limiter_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


# ---- connection limit and log limiter --------------------------------------------------


def test_connection_limit_tickets() -> None:
    released = []
    limit = ConnectionLimit(2)
    limit.on_release = lambda: released.append(limit.active)
    a, b = limit.acquire(), limit.acquire()
    assert a is not None and b is not None
    assert limit.full and limit.acquire() is None
    a.release()
    a.release()  # twice is harmless
    assert limit.active == 1 and released == [1]
    assert not limit.full
    c = limit.acquire()
    assert c is not None and limit.full
    limit.limit = 5  # the default limit follows the number of ports
    assert not limit.full


def test_log_limiter_once_per_interval() -> None:
    ll = LogLimiter(interval_s=10)
    assert ll.note("k", 0.0) == 0
    assert [ll.note("k", t) for t in (1.0, 2.0, 9.9)] == [None, None, None]
    assert ll.note("other", 3.0) == 0
    assert ll.pending
    assert ll.note("k", 10.0) == 3  # the line says how many were left out
    assert not ll.pending
    assert ll.note("k", 12.0) is None
    assert ll.flush(15.0) == []  # not due yet
    assert ll.flush(20.5) == [("k", 1)]
    assert ll.flush(40.0) == []


def test_log_limiter_is_bounded() -> None:
    ll = LogLimiter(interval_s=10, max_keys=50)
    for i in range(5000):
        assert ll.note(i, 0.0) == 0
    assert len(ll._seen) <= 50


# ---- the gate: one listening address ---------------------------------------------------


def policy(**options: object) -> ListenerPolicy:
    opts: dict[str, object] = dict(_netsec.DEFAULTS)
    for name, value in options.items():
        key = "--" + name.replace("_", "-")
        opts[key] = _netsec.CONVERTERS[key](str(value))
    return ListenerPolicy.from_options(opts)


def test_gate_admits_refuses_and_counts() -> None:
    gate = Gate(policy(allow="127.0.0.0/8", deny="127.0.0.66", max_rate=2, max_connections=3))
    verdict, t1 = gate.admit("127.0.0.1", 0.0)
    assert verdict is Verdict.ADMIT and t1 is not None
    assert gate.admit("10.0.0.1", 0.0) == (Verdict.DENIED, None)
    assert gate.admit("127.0.0.66", 0.0) == (Verdict.DENIED, None)
    verdict, _t2 = gate.admit("::ffff:127.0.0.1", 0.0)
    assert verdict is Verdict.ADMIT
    assert gate.admit("127.0.0.1", 0.0) == (Verdict.RATE_LIMITED, None)
    verdict, _t3 = gate.admit("127.0.0.2", 0.0)
    assert verdict is Verdict.ADMIT and gate.limit.full
    assert gate.admit("127.0.0.3", 0.0) == (Verdict.FULL, None)
    assert gate.counts[Verdict.ADMIT] == 3
    assert gate.counts[Verdict.DENIED] == 2
    assert "refused 2 by --allow/--deny, 1 by --max-rate, 1 over --max-connections" in gate.summary()


def test_gate_rate_is_per_address_and_zero_is_off() -> None:
    gate = Gate(policy(max_rate=1))
    assert gate.admit("192.0.2.1", 0.0)[0] is Verdict.ADMIT
    assert gate.admit("192.0.2.1", 0.0)[0] is Verdict.RATE_LIMITED
    assert gate.admit("192.0.2.2", 0.0)[0] is Verdict.ADMIT
    assert gate.admit("2001:db8::1", 0.0)[0] is Verdict.ADMIT
    assert gate.admit("2001:db8::2", 0.0)[0] is Verdict.RATE_LIMITED  # the same /64
    gate = Gate(policy(max_rate=0), ports=1000)
    assert all(gate.admit("192.0.2.1", 0.0)[0] is Verdict.ADMIT for _ in range(500))


def test_gate_default_limit_follows_ports() -> None:
    gate = Gate(policy(), ports=3)
    assert gate.limit.limit == 3 + _netsec.EXTRA_CONNECTIONS
    gate.ports = 1
    assert gate.limit.limit == 1 + _netsec.EXTRA_CONNECTIONS
    gate = Gate(policy(max_connections=2), ports=5)
    assert gate.limit.limit == 2


def test_gate_logs_refusals_once_per_address_and_interval() -> None:
    gate = Gate(policy(deny="192.0.2.0/24", max_rate=1), log_interval_s=10)
    first = gate.refusal_text(Verdict.DENIED, "192.0.2.5:4000", 0.0)
    assert first == "refused connection from 192.0.2.5:4000 (not allowed by --allow/--deny)"
    assert all(gate.refusal_text(Verdict.DENIED, f"192.0.2.5:{p}", 1.0) is None for p in range(500))
    assert gate.refusal_text(Verdict.DENIED, "192.0.2.6:4000", 1.0) is not None  # another address
    rate = gate.refusal_text(Verdict.RATE_LIMITED, "[2001:db8::1]:5", 1.0)
    assert rate is not None and "more than 1 attempts per second" in rate
    assert gate.flush(5.0) == []
    assert gate.flush(10.0) == ["500 more refused connections (not allowed by --allow/--deny) from 192.0.2.5 "
                                "in the last 10 s"]  # fmt: skip
    gate.refusal_text(Verdict.DENIED, "192.0.2.5:1", 12.0)
    line = gate.refusal_text(Verdict.DENIED, "192.0.2.5:1", 25.0)
    assert line is not None and line.endswith("(and 1 more in the last 10 s)")


def test_gate_handshake_failures() -> None:
    gate = Gate(policy())
    err = ssl.SSLError(
        1, "[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] peer did not return a certificate (_ssl.c:1)"
    )
    line = gate.handshake_failed("127.0.0.1:999", err, 0.0)
    assert line == "TLS handshake with 127.0.0.1:999 failed: peer did not return a certificate"
    assert gate.handshake_failed("127.0.0.1:1000", err, 1.0) is None
    assert gate.handshake_failures == 2
    assert gate.flush(11.0) == ["1 more failed TLS handshakes from 127.0.0.1 in the last 10 s"]


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"),
            "wrong version number",
        ),
        (ConnectionResetError(), "connection closed during the handshake"),
        (
            ConnectionAbortedError("SSL handshake is taking longer than 1.0 seconds"),
            "SSL handshake is taking",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
    ],
)
def test_tls_reason(exc: BaseException, text: str) -> None:
    assert tls_reason(exc).startswith(text)


def test_exposure_warning() -> None:
    plain = policy()
    text = exposure_warning("TCP(1)", 7000, None, plain)
    assert text is not None
    assert "TCP(1) listens on port 7000 of every network interface" in text
    assert "--interface=127.0.0.1" in text
    assert exposure_warning("TCP(1)", 7000, "127.0.0.1", plain) is None
    assert exposure_warning("TCP(1)", 7000, "0.0.0.0", plain) is None  # said explicitly
    assert exposure_warning("TCP(1)", 7000, None, policy(allow="10.0.0.0/8")) is None
    assert exposure_warning("TCP(1)", 7000, None, policy(deny="10.0.0.0/8")) is not None


# ---- TLS settings and contexts ---------------------------------------------------------


@pytest.fixture(scope="module", params=available_backends() or ["none"])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Test certificates, made once per backend (cryptography, openssl)."""
    return pki_or_skip(tmp_path_factory.mktemp(f"pki-{request.param}"), request.param)


def tls(**options: object) -> TlsSettings | None:
    opts: dict[str, object] = dict(_netsec.DEFAULTS)
    for name, value in options.items():
        key = "--" + name.replace("_", "-")
        opts[key] = _netsec.CONVERTERS[key](str(value))
    return TlsSettings.from_options(opts)


def test_tls_is_off_without_cert_or_ca() -> None:
    assert tls() is None
    assert tls(tls_verify="none") is None
    opts = dict(_netsec.DEFAULTS, **{"--tls-verify": Verify.NONE, "--tls-server-name": "x"})
    with pytest.raises(UsageError) as info:
        _netsec.check_disabled(opts, "host:1")
    assert info.value.arg == "host:1"
    assert info.value.text.startswith("--tls-server-name, --tls-verify=none set but TLS is off")
    _netsec.check_disabled(dict(_netsec.DEFAULTS), "host:1")


def test_listener_context_requires_client_certificates(pki: Pki) -> None:
    settings = tls(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_ca=pki.ca)
    assert settings is not None and settings.verifies_peer
    ctx = TlsContexts().get(settings, server_side=True)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ListenerPolicy(tls=settings).authenticates


def test_listener_context_without_ca_does_not_ask(pki: Pki) -> None:
    settings = tls(tls_cert=pki.server_cert, tls_key=pki.server_key)
    assert settings is not None and not settings.verifies_peer
    ctx = TlsContexts().get(settings, server_side=True)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert not ListenerPolicy(tls=settings).authenticates
    text = exposure_warning("TCP(0)", 1, None, ListenerPolicy(tls=settings))
    assert text is not None and "TLS without --tls-ca does not check who connects" in text


def test_client_context_verifies_by_default(pki: Pki) -> None:
    ctx = TlsContexts().get(tls(tls_ca=pki.ca), server_side=False)  # type: ignore[arg-type]
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    system = TlsContexts().get(tls(tls_ca="system"), server_side=False)  # type: ignore[arg-type]
    assert system.verify_mode == ssl.CERT_REQUIRED and system.check_hostname
    none = TlsContexts().get(tls(tls_ca="system", tls_verify="none"), server_side=False)  # type: ignore[arg-type]
    assert none.verify_mode == ssl.CERT_NONE and not none.check_hostname


def test_contexts_are_shared(pki: Pki) -> None:
    contexts = TlsContexts()
    a = contexts.get(tls(tls_ca=pki.ca), server_side=False)  # type: ignore[arg-type]
    b = contexts.get(tls(tls_ca=pki.ca), server_side=False)  # type: ignore[arg-type]
    assert a is b


@pytest.mark.parametrize(
    ("make", "server_side", "arg", "message"),
    [
        (
            lambda p: {"tls_key": p.server_key, "tls_ca": p.ca},
            False,
            "--tls-key=",
            "--tls-key needs --tls-cert",
        ),
        (lambda p: {"tls_ca": p.ca}, True, "--tls-ca=", "A TLS listener needs --tls-cert"),
        (
            lambda p: {"tls_cert": p.server_cert, "tls_key": p.server_key, "tls_ca": "system"},
            True,
            "--tls-ca=system",
            "A listener needs --tls-ca=<file> with the CA that signs its clients' certificates",
        ),
        (
            lambda p: {"tls_cert": p.server_cert, "tls_key": p.client_key},
            True,
            "--tls-key=",
            "Cannot load the TLS certificate",
        ),
        (lambda p: {"tls_cert": p.ca_key}, True, "--tls-cert=", "Cannot load the TLS certificate"),
        (
            lambda p: {"tls_cert": p.server_cert, "tls_key": p.server_key, "tls_ca": p.server_key},
            True,
            "--tls-ca=",
            "Cannot load the TLS CA file",
        ),
    ],
)
def test_context_errors_name_the_option(
    pki: Pki, make: object, server_side: bool, arg: str, message: str
) -> None:
    settings = tls(**make(pki))  # type: ignore[operator]
    assert settings is not None
    with pytest.raises(UsageError) as info:
        TlsContexts().get(settings, server_side=server_side)
    assert info.value.arg is not None and info.value.arg.startswith(arg)
    assert info.value.text.startswith(message)
    assert "\n" not in str(info.value)


def test_key_mismatch_says_so(pki: Pki) -> None:
    settings = tls(tls_cert=pki.server_cert, tls_key=pki.client_key)
    with pytest.raises(UsageError, match="key values mismatch"):
        TlsContexts().get(settings, server_side=True)  # type: ignore[arg-type]


def test_encrypted_key_is_an_error_not_a_prompt(pki: Pki, tmp_path: Path) -> None:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        pytest.skip("cryptography is needed to write an encrypted key")
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), None)
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    settings = tls(tls_cert=pki.server_cert, tls_key=encrypted)
    with pytest.raises(UsageError) as info:
        TlsContexts().get(settings, server_side=True)  # type: ignore[arg-type]
    assert info.value.text.startswith("The TLS key is encrypted")
    assert info.value.arg == f"--tls-key={encrypted}"


def test_world_readable_key_warns_once(pki: Pki, tmp_path: Path) -> None:
    key = tmp_path / "open.key"
    key.write_bytes(pki.server_key.read_bytes())
    os.chmod(key, 0o644)
    contexts = TlsContexts()
    settings = tls(tls_cert=pki.server_cert, tls_key=key)
    assert settings is not None
    text = contexts.key_warning(settings)
    assert text is not None and "readable by every user" in text
    assert contexts.key_warning(settings) is None
    assert contexts.key_warning(tls(tls_cert=pki.server_cert, tls_key=pki.server_key)) is None  # type: ignore[arg-type]


# ---- real handshakes over memory BIOs ---------------------------------------------------


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_name: str) -> tuple[object, object]:
    """Run a TLS handshake in memory. Returns (server result, client result): None or the error."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_side=False, server_hostname=server_name)
    results: dict[str, object] = {}
    for _ in range(20):
        for name, obj, out, peer_in in (("client", c, c_out, s_in), ("server", s, s_out, c_in)):
            if name not in results:
                try:
                    obj.do_handshake()
                    results[name] = None
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                except ssl.SSLError as exc:
                    results[name] = exc
            data = out.read()
            if data:
                peer_in.write(data)
        if len(results) == 2:
            break
    if "client" in results and results["client"] is None and results.get("server") is None:
        # TLS 1.3: the server's verdict on the client certificate comes after the
        # client is done; a read shows the alert.
        try:
            c.read(1)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            results["client"] = exc
    return results.get("server", "unfinished"), results.get("client", "unfinished")


def server_ctx(pki: Pki) -> ssl.SSLContext:
    settings = tls(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_ca=pki.ca)
    return TlsContexts().get(settings, server_side=True)  # type: ignore[arg-type]


def client_ctx(**options: object) -> ssl.SSLContext:
    return TlsContexts().get(tls(**options), server_side=False)  # type: ignore[arg-type]


def test_handshake_with_client_certificate(pki: Pki) -> None:
    client = client_ctx(tls_cert=pki.client_cert, tls_key=pki.client_key, tls_ca=pki.ca)
    assert handshake(server_ctx(pki), client, "127.0.0.1") == (None, None)
    assert handshake(server_ctx(pki), client, "localhost") == (None, None)


def test_handshake_without_client_certificate_fails(pki: Pki) -> None:
    server_result, _ = handshake(server_ctx(pki), client_ctx(tls_ca=pki.ca), "127.0.0.1")
    assert isinstance(server_result, ssl.SSLError)
    assert "did not return a certificate" in tls_reason(server_result)


def test_handshake_with_certificate_of_another_ca_fails(pki: Pki) -> None:
    client = client_ctx(tls_cert=pki.other_client_cert, tls_key=pki.other_client_key, tls_ca=pki.ca)
    server_result, _ = handshake(server_ctx(pki), client, "127.0.0.1")
    assert isinstance(server_result, ssl.SSLCertVerificationError)
    assert tls_reason(server_result).startswith("certificate verify failed")


def test_client_checks_the_host_name(pki: Pki) -> None:
    client = client_ctx(tls_cert=pki.client_cert, tls_key=pki.client_key, tls_ca=pki.ca)
    _, client_result = handshake(server_ctx(pki), client, "wrong.example")
    assert isinstance(client_result, ssl.SSLCertVerificationError)
    assert "Hostname mismatch" in tls_reason(client_result)


def test_client_checks_the_server_ca(pki: Pki) -> None:
    client = client_ctx(tls_cert=pki.client_cert, tls_key=pki.client_key, tls_ca=pki.other_ca)
    _, client_result = handshake(server_ctx(pki), client, "127.0.0.1")
    assert isinstance(client_result, ssl.SSLCertVerificationError)


def test_client_without_verification_connects_anywhere(pki: Pki) -> None:
    client = client_ctx(tls_cert=pki.client_cert, tls_key=pki.client_key, tls_verify="none")
    assert handshake(server_ctx(pki), client, "wrong.example") == (None, None)


def test_tls_1_1_is_refused(pki: Pki) -> None:
    client = client_ctx(tls_cert=pki.client_cert, tls_key=pki.client_key, tls_ca=pki.ca)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.minimum_version = ssl.TLSVersion.TLSv1
            client.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    server_result, client_result = handshake(server_ctx(pki), client, "127.0.0.1")
    assert isinstance(server_result, ssl.SSLError) or isinstance(client_result, ssl.SSLError)


def test_both_certificate_backends_agree(tmp_path: Path) -> None:
    backends = available_backends()
    if len(backends) < 2:
        pytest.skip(f"only {backends or 'no backend'} available")
    a = make_pki(tmp_path / "a", "cryptography")
    b = make_pki(tmp_path / "b", "openssl")
    for p in (a, b):
        client = client_ctx(tls_cert=p.client_cert, tls_key=p.client_key, tls_ca=p.ca)
        assert handshake(server_ctx(p), client, "::1") == (None, None)
