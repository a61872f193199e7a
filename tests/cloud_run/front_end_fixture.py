"""The local Cloud Run's real front end in this process, for tests that need no root: it routes
a few hosts to instances the test started, as the controller would, and logs to a buffer."""

from __future__ import annotations

import asyncio
import io
import threading

from tools.cloud_run.front_end import FrontEnd
from tools.cloud_run.invoker_check import Access, Verifier
from tools.cloud_run.routes import Backend

REVISION = "test-00001"


class Routes:
    """The controller's view the front end asks for: each host to one instance."""

    def __init__(self, ports: dict[str, int], access: Access) -> None:
        self.ports = ports
        self.access = access

    def backends(self, host: str) -> list[Backend]:
        port = self.ports.get(host)
        return [] if port is None else [Backend(100, port, REVISION, self.access)]

    def knows(self, host: str) -> bool:
        return host in self.ports


def start_front_end(
    ports: dict[str, int], access: Access, verify: Verifier
) -> tuple[FrontEnd, io.StringIO]:
    """The front end serving `ports`' hosts on a free loopback port, and its output."""
    output = io.StringIO()
    # Its lines as the local Cloud Run prints them, in a buffer of this front end's own.
    front_end = FrontEnd(
        Routes(ports, access), lambda line: print(f"front end: {line}", file=output)
    )  # type: ignore[arg-type]
    front_end.verify = verify
    listening = threading.Event()

    def serve() -> None:
        asyncio.run(front_end.serve(0, listening))

    threading.Thread(target=serve, name="front end", daemon=True).start()
    if not listening.wait(30):
        raise RuntimeError("the front end did not listen")
    return front_end, output
