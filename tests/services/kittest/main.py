"""The kit's test service as a server binary on python/runtime: what the runtime's end-to-end
and adversarial tests start, so that deleting a sample service deletes none of them."""

from __future__ import annotations

from absl import flags
from kittest.v1 import test_service_pb2_grpc

from python.channels import channels
from python.runtime import app
from tests.services.kittest.relay import Relaying
from tests.services.kittest.servicer import TestServicer

_UPSTREAM = flags.DEFINE_string("upstream", None, "host[:port] that Relay calls.")
_UPSTREAM_INSECURE = flags.DEFINE_bool(
    "upstream_insecure", False, "Plaintext h2c to the upstream instead of TLS."
)


# Relaying first: its Relay must come before the generated base's, which answers UNIMPLEMENTED.
class KitTestServicer(Relaying, TestServicer):
    def __init__(self, upstream: channels.Connection | None) -> None:
        Relaying.__init__(self, upstream)
        TestServicer.__init__(self)


def services() -> list[app.Registration]:
    upstream = None
    if _UPSTREAM.value:
        try:
            channels.split_server(_UPSTREAM.value)
        except ValueError:
            raise app.UsageError(f"--upstream: {_UPSTREAM.value!r} is not host[:port]") from None
        upstream = channels.Connection(server=_UPSTREAM.value, insecure=_UPSTREAM_INSECURE.value)
    return [(KitTestServicer(upstream), test_service_pb2_grpc.add_TestServiceServicer_to_server)]


if __name__ == "__main__":
    app.run("kittest", services)
