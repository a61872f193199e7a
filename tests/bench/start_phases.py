"""Run inside an image by cold_start.py (`python3.13 -c <this file's text> MODULE`): what a
server's start spends, in the order the runtime does it, as one JSON line of milliseconds.

MODULE is the service's main module (tests.services.kittest.main); its `services()` is called
as app.run would. The time before this script's first line (the interpreter's own start) is
measured apart, by cold_start.py.
"""

import time

_started = time.perf_counter()

import asyncio  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

phases: dict[str, float] = {}
_last = _started


def mark(name: str) -> None:
    global _last
    now = time.perf_counter()
    phases[name] = round((now - _last) * 1000, 1)
    _last = now


mark("stdlib (asyncio, json)")
import grpc  # noqa: E402, F401

mark("import grpc (and protobuf)")
from python.runtime import app, logs, server  # noqa: E402

mark("import python.runtime (absl, health, reflection, auth)")
main = importlib.import_module(sys.argv[1])
mark(f"import {sys.argv[1]}")
app.flags.FLAGS(["server"])
mark("flags parsed")
logs.configure("json")
mark("logging set-up")
services = main.services()
mark("services()")


async def start() -> None:
    built = server.build(app.config_from_flags(0), services)
    mark("server built, port bound")
    await built.server.start()
    mark("server started")
    await built.health.set_serving()
    mark("health SERVING")
    await built.server.stop(None)


asyncio.run(start())
phases["total"] = round((_last - _started) * 1000, 1)
# Needed by the auth modes and the relay only: imported at their first use.
loaded = [name for name in ("google.auth", "requests", "cryptography") if name in sys.modules]
print(json.dumps({"phases": phases, "loaded": loaded}), file=sys.stderr)
