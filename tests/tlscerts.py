"""Test certificates: a CA, a server and a client certificate, and an unrelated CA.

Made with the `cryptography` package when it is importable, else with the
machine's `openssl` command. Keys are EC P-256, files are PEM in a directory
the test owns (tmp_path); key files are mode 600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["BACKENDS", "Pki", "available_backends", "make_pki", "pki_or_skip"]

BACKENDS = ("cryptography", "openssl")
SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Pki:
    """File paths of one set of test certificates."""

    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: A second CA nobody trusts, and a client certificate it signed.
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path


def available_backends() -> list[str]:
    found = []
    try:
        import cryptography  # noqa: F401
    except ImportError:
        pass
    else:
        found.append("cryptography")
    if shutil.which("openssl"):
        found.append("openssl")
    return found


def pki_or_skip(directory: Path, backend: str | None = None) -> Pki:
    """make_pki, or skip the test when neither cryptography nor openssl is there."""
    backends = available_backends()
    if not backends or (backend is not None and backend not in backends):
        pytest.skip(f"cannot make test certificates: {backend or 'cryptography or openssl'} missing")
    return make_pki(directory, backend or backends[0])


def make_pki(directory: Path, backend: str = "cryptography") -> Pki:
    """Write the certificates into `directory` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    make = _Cryptography(directory) if backend == "cryptography" else _OpenSsl(directory)
    ca, ca_key = make.ca("ca", "Hub Test CA")
    other_ca, other_ca_key = make.ca("other-ca", "Unrelated Test CA")
    server_cert, server_key = make.leaf("server", "localhost", ca, ca_key, server=True)
    client_cert, client_key = make.leaf("client", "hub client", ca, ca_key, server=False)
    other_cert, other_key = make.leaf("other-client", "stranger", other_ca, other_ca_key, server=False)
    for key in (ca_key, other_ca_key, server_key, client_key, other_key):
        key.chmod(0o600)
    return Pki(ca, ca_key, server_cert, server_key, client_cert, client_key, other_ca, other_cert, other_key)


class _Cryptography:
    def __init__(self, directory: Path):
        self.dir = directory

    def _key(self):  # type: ignore[no-untyped-def]
        from cryptography.hazmat.primitives.asymmetric import ec

        return ec.generate_private_key(ec.SECP256R1())

    def _write(self, name: str, cert, key) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
        from cryptography.hazmat.primitives import serialization

        cert_path, key_path = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    def _builder(self, subject_cn: str, issuer, public_key):  # type: ignore[no-untyped-def]
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer if issuer is not None else name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    def ca(self, name: str, cn: str) -> tuple[Path, Path]:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        key = self._key()
        cert = (
            self._builder(cn, None, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return self._write(name, cert, key)

    def leaf(self, name: str, cn: str, ca: Path, ca_key_path: Path, server: bool) -> tuple[Path, Path]:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID

        ca_cert = x509.load_pem_x509_certificate(ca.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        key = self._key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            self._builder(cn, ca_cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        if server:
            names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
            names += [x509.IPAddress(ipaddress.ip_address(a)) for a in SERVER_IPS]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        return self._write(name, cert, key)


class _OpenSsl:
    def __init__(self, directory: Path):
        self.dir = directory
        self.openssl = shutil.which("openssl") or "openssl"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [self.openssl, *args],
            check=True,
            capture_output=True,
            timeout=30,
            env={**os.environ, "OPENSSL_CONF": os.environ.get("OPENSSL_CONF", "/dev/null")},
        )

    def _newkey(self) -> list[str]:
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

    def ca(self, name: str, cn: str) -> tuple[Path, Path]:
        cert, key = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        self._run(
            "req", "-x509", *self._newkey(), "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={cn}",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
        )  # fmt: skip
        return cert, key

    def leaf(self, name: str, cn: str, ca: Path, ca_key: Path, server: bool) -> tuple[Path, Path]:
        cert, key, csr = (self.dir / f"{name}.{ext}" for ext in ("pem", "key", "csr"))
        ext = self.dir / f"{name}.ext"
        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            f"extendedKeyUsage={'serverAuth' if server else 'clientAuth'}",
            "subjectKeyIdentifier=hash",
            "authorityKeyIdentifier=keyid",
        ]
        if server:
            alt = [f"DNS:{n}" for n in SERVER_NAMES] + [f"IP:{a}" for a in SERVER_IPS]
            lines.append("subjectAltName=" + ",".join(alt))
        ext.write_text("\n".join(lines) + "\n")
        self._run("req", *self._newkey(), "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
        self._run(
            "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-out", str(cert),
            "-days", "2", "-set_serial", str(secrets.randbits(63)), "-extfile", str(ext),
        )  # fmt: skip
        return cert, key
