"""pyserial's RFC 2217 server (PortManager) in front of a pty slave, as a test peer.

Usage: python tests/e2e/peers/rfc2217_server.py <device> <port> [<read-timeout-s>]

<device> is a pty slave, or loop:// for pyserial's loopback port (what is
written comes back). The device's read timeout (default 0.2 s; pyserial's
example uses 3) is how long the server may take to close a connection after
the client's EOF, and to accept the next one: a larger one makes a slow peer.

Modelled on pyserial's examples/rfc2217_server.py: one client at a time on
127.0.0.1:<port>; a thread copies the device to the socket, the main thread
feeds the socket through PortManager.filter() to the device, and the modem
lines are checked every 0.2 s. It prints "READY <port>" once listening and
runs until SIGTERM.

A Linux pty has no modem lines (TIOCMGET/TIOCMBIS give ENOTTY), which stops
PortManager at the first DTR change. The device class here keeps DTR, RTS and
break in memory instead and loops them back as pyserial's loop:// does: CTS
follows RTS, DSR follows DTR, CD is on, RI off. Baud rate and stop bits reach
the pty's termios, where the test reads them from the master side.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading

import serial
import serial.rfc2217


class PtyDevice(serial.Serial):  # type: ignore[misc]
    """A pyserial port on a pty slave with emulated modem lines."""

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return bool(self._rts_state)

    @property
    def dsr(self) -> bool:
        return bool(self._dtr_state)

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True


class _Connection:
    """What PortManager writes to: the client socket, thread-safe."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


def _device_to_socket(dev: PtyDevice, conn: _Connection, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            data = dev.read(dev.in_waiting or 1)
        except (OSError, serial.SerialException):
            break
        if data:
            try:
                conn.write(data.replace(b"\xff", b"\xff\xff"))
            except OSError:
                break


def _modem_poll(pm: serial.rfc2217.PortManager, stop: threading.Event) -> None:
    while not stop.wait(0.2):
        try:
            pm.check_modem_lines()
        except OSError:
            break


def serve(device: str, port: int, timeout_s: float = 0.2) -> None:
    if device.startswith("loop://"):
        dev = serial.serial_for_url(device, 115200, timeout=timeout_s)
    else:
        dev = PtyDevice(device, 115200, timeout=timeout_s)
    dev.dtr = False
    dev.rts = False
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    print(f"READY {port}", flush=True)
    while True:
        sock, addr = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        logging.info("connection from %s", addr)
        conn = _Connection(sock)
        dev.dtr = True
        dev.rts = True
        pm = serial.rfc2217.PortManager(dev, conn, logging.getLogger("rfc2217"))
        stop = threading.Event()
        threads = [
            threading.Thread(target=_device_to_socket, args=(dev, conn, stop), daemon=True),
            threading.Thread(target=_modem_poll, args=(pm, stop), daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                out = b"".join(pm.filter(data))
                if out:
                    dev.write(out)
        except OSError as exc:
            logging.info("connection ended: %s", exc)
        stop.set()
        for t in threads:
            # Until the device read times out: a reader left running would
            # steal the next connection's first bytes.
            t.join(timeout_s + 2)
        sock.close()
        dev.dtr = False
        dev.rts = False
        logging.info("disconnected")


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="rfc2217_server: %(message)s")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.2)


if __name__ == "__main__":
    main()
