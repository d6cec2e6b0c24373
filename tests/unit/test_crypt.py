"""crypt: not supported; creating it fails with one line pointing at TLS."""

from __future__ import annotations

import pytest

from filters.crypt import CryptFilter
from hub.errors import UsageError
from hub.options import option_names
from hub.testing import make_filter


def test_usage_explains_tls() -> None:
    assert option_names(CryptFilter.USAGE) == {"--secret"}
    assert "RC4" in CryptFilter.USAGE
    assert "--tls-*" in CryptFilter.USAGE


@pytest.mark.parametrize("argv", [[], ["--secret=phrase"], ["--secret="]])
def test_configure_refuses(argv: list[str]) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(CryptFilter, argv)
    assert exc.value.arg is None
    assert exc.value.text.startswith("the crypt filter is not supported: use TLS")
    assert "\n" not in str(exc.value)


def test_unknown_option_is_still_reported_as_such() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(CryptFilter, ["--key=x"])
    assert exc.value.arg == "--key=x"
