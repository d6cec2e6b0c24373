"""The status page in a real browser: headless Chromium driven by selenium.

A hub with a simulated GPS, a pty an application holds open and two TCP
clients; the test checks what a person would see and saves a screenshot to
$HUB4COM_ARTIFACTS (default: test-artifacts/ in the repository).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DEADLINE_S, free_port

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(
    os.environ.get("HUB4COM_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
)
#: The page updates once a second; a loaded CI machine gets plenty more.
PAGE_DEADLINE_S = 20.0

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="needs Debian's chromium and chromium-driver"
)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.add_argument("--window-size=1400,1300")
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def row(driver: Any, port: str, what: str) -> Any:
    """A value from the port's row, read in one go (the rows are redrawn every second)."""
    script = {
        "state": "return r && r.dataset.state",
        "out": "return r && r.querySelector('.bytes-out .count').textContent",
        "peers": "return r && r.querySelector('.peers').textContent",
    }[what]
    return driver.execute_script(f"const r = document.querySelector('tr[data-port=\"{port}\"]'); {script}")


def until(driver: Any, predicate: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, PAGE_DEADLINE_S, poll_frequency=0.1).until(
        lambda d: predicate(d), message=f"waiting for {what}"
    )


def test_status_page_shows_ports_counters_disconnects_and_a_tap(start_hub, browser, tmp_path):
    t1, t2, http = free_port(), free_port(), free_port()
    link = tmp_path / "gps1"
    hub = start_hub(
        "--use-driver=sim",
        "--rate=5",
        "gps",
        "--use-driver=pty",
        str(link),
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        str(t1),
        str(t2),
        f"--http={http}",
        wait_ports=4,
    )
    hub.wait_line("HTTP: status page")
    app = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)  # an application holds the pty
    c1 = socket.create_connection(("127.0.0.1", t1), timeout=DEADLINE_S)
    c2 = socket.create_connection(("127.0.0.1", t2), timeout=DEADLINE_S)
    try:
        browser.get(f"http://127.0.0.1:{http}/")
        for port in ("sim-gps(0)", "gps1(1)", "TCP(2)", "TCP(3)"):
            until(browser, lambda d, port=port: row(d, port, "state") == "connected", f"{port} connected")
        peer = f"127.0.0.1:{c1.getsockname()[1]}"
        until(browser, lambda d: peer in (row(d, "TCP(2)", "peers") or ""), "the client's address")
        first = row(browser, "TCP(2)", "out")
        until(browser, lambda d: row(d, "TCP(2)", "out") != first, "the byte counter to grow")
        c2.close()
        until(browser, lambda d: row(d, "TCP(3)", "state") == "waiting", "TCP(3) back to waiting")
        assert row(browser, "TCP(2)", "state") == "connected"
        browser.execute_script("document.querySelector('tr[data-port=\"sim-gps(0)\"] .tap-button').click()")
        until(browser, lambda d: "$GPGGA," in d.find_element("id", "tap-lines").text, "NMEA in the tap")
        text = browser.find_element("id", "tap-lines").text
        assert " in " in text and "$GPRMC," in text
        assert browser.find_element("id", "health").text == "healthy"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.execute_script("window.scrollTo(0, 0)")
        assert browser.save_screenshot(str(ARTIFACTS / "status-page.png"))
        browser.find_element("id", "tap-pause").click()
        held = until(browser, lambda d: "held" in d.find_element("id", "tap-stats").text, "paused tap")
        assert held
    finally:
        c1.close()
        c2.close()
        os.close(app)
