"""PingService, in the shape of Cloud Run's grpc-ping sample: `bazel run //python/server`.

`--upstream` (or $GRPC_PING_HOST, as in Google's sample) names where SendUpstream relays to:
`host[:port]`, or a service's URL (ping_servicer.Upstream).
"""

import os

from absl import flags
from ping.v1 import ping_pb2_grpc

from python.runtime import app
from python.services.ping.ping_servicer import PingServicer, Upstream

_UPSTREAM = flags.DEFINE_string(
    "upstream",
    os.environ.get("GRPC_PING_HOST"),
    "host[:port], or a service's http(s):// URL, that SendUpstream relays to.",
)
_UPSTREAM_INSECURE = flags.DEFINE_bool(
    "upstream_insecure",
    os.environ.get("GRPC_PING_INSECURE", "").lower() in ("1", "true", "yes"),
    "Plaintext h2c to the upstream instead of TLS.",
)


def services() -> list[app.Registration]:
    upstream = None
    if _UPSTREAM.value:
        try:
            upstream = Upstream(_UPSTREAM.value, _UPSTREAM_INSECURE.value)
        except ValueError as error:
            raise app.UsageError(f"--upstream: {error}") from None
    return [(PingServicer(upstream), ping_pb2_grpc.add_PingServiceServicer_to_server)]


if __name__ == "__main__":
    app.run("ping", services)
