"""The shared deferred-accept helper: accepts only while there is room, pauses on EMFILE."""

import asyncio
import errno
import socket

from hub import accept as _accept
from hub.accept import Acceptor


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    return s


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.02)


def test_accepts_only_while_there_is_room():
    async def run() -> None:
        loop = asyncio.get_running_loop()
        room = [1]
        got: list[socket.socket] = []

        def accepted(conn: socket.socket, addr: object) -> None:
            got.append(conn)
            room[0] -= 1

        sock = _listener()
        acc = Acceptor(lambda: "L", lambda: room[0] > 0, accepted)
        acc.start(loop, sock)
        clients = [socket.create_connection(sock.getsockname()) for _ in range(3)]
        await _settle()
        assert len(got) == 1  # the others wait in the backlog
        room[0] = 2
        acc.watch()
        await _settle()
        assert len(got) == 3
        acc.close()
        for c in clients + got:
            c.close()
        sock.close()

    asyncio.run(run())


class _ExhaustedSocket:
    """A listening socket whose accept() fails with EMFILE a few times."""

    def __init__(self, real: socket.socket, failures: int):
        self.real = real
        self.failures = failures

    def fileno(self) -> int:
        return self.real.fileno()

    def accept(self) -> tuple[socket.socket, object]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self.real.accept()


def test_pauses_after_running_out_of_file_descriptors(monkeypatch):
    monkeypatch.setattr(_accept, "ACCEPT_PAUSE_S", 0.1)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        got: list[socket.socket] = []
        real = _listener()
        acc = Acceptor(lambda: "L", lambda: True, lambda conn, addr: got.append(conn))
        acc.start(loop, _ExhaustedSocket(real, failures=1))  # type: ignore[arg-type]
        client = socket.create_connection(real.getsockname())
        await asyncio.sleep(0.05)
        assert got == []  # paused, not spinning
        await asyncio.sleep(0.2)
        assert len(got) == 1  # resumed after the pause
        acc.close()
        client.close()
        got[0].close()
        real.close()

    asyncio.run(run())
