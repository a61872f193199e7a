"""A bare instance that sends its SETTINGS and closes each connection at once, as an instance
that dies or ends a connection does: the front end's gate must then end that connection, not
crash writing a refusal to a client side already shut."""

from __future__ import annotations

import socket
import threading

from tools.cloud_run.request_gate import SETTINGS, frame


class ClosingInstance:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, name="closing instance", daemon=True).start()

    def serve(self) -> None:
        while True:
            connection, _ = self.server.accept()
            with connection:
                connection.sendall(frame(SETTINGS, 0, 0, b""))
