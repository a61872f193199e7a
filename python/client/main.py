"""Command-line client: `bazel run //python/client -- --server host[:port] --message hi`.

Prints the reply in protobuf text format. Exit codes: 0 OK, 1 the RPC failed (status name and
detail on stderr), 2 bad input.
"""

from __future__ import annotations

import sys

import grpc
from absl import app, flags
from google.protobuf import text_format

from python.client import ping_client

_SERVER = flags.DEFINE_string("server", "localhost:8080", "host[:port]; port 443 when omitted.")
_INSECURE = flags.DEFINE_bool("insecure", False, "Plaintext h2c instead of TLS (local servers).")
_MESSAGE = flags.DEFINE_string("message", "ping", "Message to send.")
_TIMEOUT = flags.DEFINE_float(
    "timeout", ping_client.DEFAULT_TIMEOUT_SECONDS, "Deadline of the call, in seconds."
)

EXIT_RPC_FAILED = 1
EXIT_USAGE = 2


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        return usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        channel = ping_client.open_channel(_SERVER.value, insecure=_INSECURE.value)
    except ValueError as error:
        return usage_error(str(error))
    with channel:
        try:
            response = ping_client.send(channel, _MESSAGE.value, timeout=_TIMEOUT.value)
        except grpc.RpcError as error:
            print(f"client: {error.code().name}: {error.details()}", file=sys.stderr)
            return EXIT_RPC_FAILED
    print(text_format.MessageToString(response), end="")
    return 0


def usage_error(message: str) -> int:
    print(f"client: {message}", file=sys.stderr)
    return EXIT_USAGE


def parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.exit(usage_error(str(error)))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
