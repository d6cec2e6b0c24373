"""Encrypting/decrypting filter: not supported here; protect network links with TLS.

Usage: crypt [options]

hub4com's crypt filter obfuscates a link with RC4 keyed by the MD5 hash of a
secret. It uses the same keystream in both directions, has no nonce and no
integrity check, and RC4 is broken, so it gives no real protection. This hub
does not reproduce it: creating a crypt filter ends start-up with an error.

To protect a link carried over the network, use TLS instead: it is a feature
of the tcp driver (its --tls-* options), not a filter, and it works with any
peer that speaks TLS.

Options:
  --secret=<secret>  Accepted only so that the error names the real problem.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from hub.errors import UsageError
from hub.filter import Filter

__all__ = ["CryptFilter"]

UNSUPPORTED = (
    "the crypt filter is not supported: use TLS (the tcp driver's --tls-* options) to protect a network link"
)


class CryptFilter(Filter):
    NAME: ClassVar[str] = "crypt"
    DESCRIPTION: ClassVar[str] = "Encrypting/decrypting filter (not supported: use TLS)"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> NoReturn:
        """Always raises UsageError: the filter is not supported."""
        raise UsageError(None, UNSUPPORTED)
