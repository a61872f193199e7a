"""Command-line client: `bazel run //python/client -- --server HOST[:PORT] SUBCOMMAND ...`.

Talks to a Cloud Run service as Cloud Run expects: TLS to port 443 with the system roots and a
Google ID token for `https://<host>`; `--insecure` for a local server (plaintext h2c). One
channel serves every call. Exit codes: 0 OK, 1 the call failed (status name and detail on
stderr), 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

# gRPC's own log lines (each failed TLS handshake, each retry) would bury the one line this
# client prints per error; its errors still show. Set before gRPC loads.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc

from python.channels import channels
from python.channels.auth import AuthError
from python.client import commands

EXIT_RPC_FAILED = 1
EXIT_USAGE = 2


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit 2), not usage text."""

    def error(self, message: str) -> NoReturn:
        print(f"client: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def parser() -> argparse.ArgumentParser:
    root = OneLineErrorParser(prog="client", description=__doc__.split("\n\n")[0])
    root.add_argument("--server", default="localhost:8080", help="HOST[:PORT]; port 443 if omitted")
    root.add_argument("--insecure", action="store_true", help="plaintext h2c (local servers)")
    root.add_argument("--ca_cert", help="PEM file of the CA to trust instead of the system roots")
    root.add_argument("--authority", help=":authority (and TLS name) to use instead of the host")
    auth = root.add_mutually_exclusive_group()
    auth.add_argument(
        "--auth",
        dest="auth",
        action="store_true",
        default=None,
        help="send a Google ID token (default with TLS)",
    )
    auth.add_argument("--noauth", dest="auth", action="store_false", help="send no token")
    root.add_argument("--audience", help="ID token audience (default https://HOST)")
    root.add_argument("--token_file", help="send the token in this file instead of minting one")
    root.add_argument(
        "--timeout",
        type=float,
        default=channels.DEFAULT_TIMEOUT_SECONDS,
        help="deadline of each call, in seconds",
    )
    root.add_argument(
        "--wait_for_ready",
        action="store_true",
        help="wait out a reconnect (up to the deadline) instead of failing fast",
    )
    root.add_argument("--json", action="store_true", help="one JSON object per message")
    subcommands = root.add_subparsers(
        title="subcommands", required=True, metavar="SUBCOMMAND", parser_class=OneLineErrorParser
    )
    commands.add_subcommands(subcommands)
    return root


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    connection = channels.Connection(
        server=args.server,
        insecure=args.insecure,
        ca_cert=args.ca_cert,
        authority=args.authority,
        auth=args.auth,
        audience=args.audience,
        token_file=args.token_file,
    )
    try:
        channel = channels.open_channel(connection)
    except (ValueError, AuthError) as error:
        print(f"client: {error}", file=sys.stderr)
        return EXIT_USAGE
    with channel:
        try:
            args.command(channel, args, commands.Printer(args.json))
        except grpc.RpcError as error:
            print(f"client: {error.code().name}: {error.details()}", file=sys.stderr)
            return EXIT_RPC_FAILED
        except argparse.ArgumentTypeError as error:  # a bad note read from stdin
            print(f"client: {error}", file=sys.stderr)
            return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
