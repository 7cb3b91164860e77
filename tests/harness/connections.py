"""A TCP listener that counts connection attempts (stands in for the hosts' SSH servers)."""

from __future__ import annotations

import socket
import threading


class ConnectionCounter:
    """Listens on 127.0.0.1:<port>; ``count`` is the number of connections accepted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
