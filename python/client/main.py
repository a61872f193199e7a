"""Command-line client: `client [FLAGS] SUBCOMMAND [FLAGS] ...`.

The kit's client (`bazel run //python/client --`) has the subcommands every kit server answers:
health, call, list, describe. A service's own client binary adds its subcommands to those with
main(argv, [its add_subcommands]) (python/services/ping/client.py).

Talks to a Cloud Run service as Cloud Run expects: TLS to port 443 with the system roots and a
Google ID token for `https://<host>`; `--insecure` for a local server (plaintext h2c). One
channel serves every call. Exit codes: 0 OK, 1 the call failed (status name and detail on
stderr), 2 bad input (one line on stderr), 141 the reader of stdout went away.

The global flags (`--server`, `--insecure`, TLS, token, `--timeout`, `--json`...) go before or
after the subcommand, or some on each side, with the same meaning and defaults; a flag given on
both sides takes its value from after the subcommand (`--timeout 5 health --timeout 9`: 9 s).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

# gRPC's own log lines (each failed TLS handshake, each retry) would bury the one line this
# client prints per error; its errors still show. Set before gRPC loads.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc

from python.channels import channels
from python.channels.auth import AuthError
from python.client import any_method, commands, headers
from python.client.printing import printable

EXIT_RPC_FAILED = 1
EXIT_USAGE = 2
# What a shell reports for a program killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit 2), not usage text, and an
    argument that starts with a minus and a digit is a value, not a flag."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A service's arguments may start with a minus: route guide's points south or west
        # (`-33.8,151.2`, `-1,-1`). argparse takes an argument for a positional only when this
        # matcher calls it a negative number, which on Python 3.13 means all of it is one
        # number (`-1`, `-1.5`): `-33.8,151.2` became an unknown flag, and with flags allowed
        # after the subcommand, `--` was the only way out.
        # Python 3.14's argparse uses this very pattern (a minus, then a digit or a dot and a
        # digit), so this backports it; java/client's Main.java applies the same rule. None of
        # our flags starts so. The alternatives cost more: scanning argv first means knowing
        # which arguments are flag values (argparse's job), and parse_known_args loses the
        # positionals' help and "required" checks.
        self._negative_number_matcher = re.compile(r"-\.?\d")

    def error(self, message: str) -> NoReturn:
        print(f"client: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def add_global_flags(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """The flags that go before or after the subcommand, each default written here once.

    The copy after the subcommand (`defaults=False`) sets only the flags it is given, so it never
    overwrites a flag given before the subcommand with a default; a flag it is given wins."""
    group = parser.add_argument_group("global flags (before or after SUBCOMMAND)")
    auth = group.add_mutually_exclusive_group()

    def flag(*names: str, to: argparse._ActionsContainer = group, **kwargs) -> None:
        if not defaults:
            kwargs["default"] = argparse.SUPPRESS
        to.add_argument(*names, **kwargs)

    flag("--server", default="localhost:8080", help="HOST[:PORT]; port 443 if omitted")
    flag("--insecure", action="store_true", help="plaintext h2c (local servers)")
    flag("--ca_cert", help="PEM file of the CA to trust instead of the system roots")
    flag("--authority", help=":authority (and TLS name) to use instead of the host")
    flag(
        "--auth",
        to=auth,
        dest="auth",
        action="store_true",
        default=None,
        help="send a Google ID token (default with TLS)",
    )
    flag("--noauth", to=auth, dest="auth", action="store_false", help="send no token")
    flag("--audience", help="ID token audience (default https://HOST)")
    flag("--token_file", help="send the token in this file instead of minting one")
    flag(
        "--timeout",
        type=float,
        default=channels.DEFAULT_TIMEOUT_SECONDS,
        help="deadline of each call, in seconds",
    )
    flag(
        "--wait_for_ready",
        action="store_true",
        help="wait out a reconnect (up to the deadline) instead of failing fast",
    )
    flag("--json", action="store_true", help="one JSON object per message")
    # Repeatable, so given on both sides it adds up (main() joins the two lists) where the other
    # flags take the value after the subcommand.
    flag(
        "-H",
        "--header",
        dest="headers" if defaults else "headers_after_subcommand",
        action="append",
        type=headers.parse,
        default=[],
        metavar="'NAME: VALUE'",
        help="metadata on every call (repeatable); a NAME-bin header's value is base64",
    )


def parser(command_sets: Sequence[commands.AddSubcommands] = ()) -> argparse.ArgumentParser:
    """The kit's subcommands and those of each of `command_sets`, under the global flags."""
    root = OneLineErrorParser(prog="client", description=__doc__.split("\n\n")[0])
    add_global_flags(root)
    after_subcommand = argparse.ArgumentParser(add_help=False)
    add_global_flags(after_subcommand, defaults=False)
    subcommands = root.add_subparsers(
        title="subcommands", required=True, metavar="SUBCOMMAND", parser_class=OneLineErrorParser
    )
    for add_subcommands in (*command_sets, commands.add_subcommands, any_method.add_subcommands):
        add_subcommands(subcommands, [after_subcommand])
    return root


def main(argv: list[str], command_sets: Sequence[commands.AddSubcommands] = ()) -> int:
    """Runs the subcommand in `argv`, one of the kit's or of `command_sets` (each a service's
    add_subcommands); returns the exit code."""
    args = parser(command_sets).parse_args(argv)
    args.headers += getattr(args, "headers_after_subcommand", [])
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
            args.command(channel, args, args.printer(args.json))
        except grpc.RpcError as error:
            details = printable(error.details() or "")
            print(f"client: {error.code().name}: {details}", file=sys.stderr)
            return EXIT_RPC_FAILED
        # Bad input found as the command runs: a request read from stdin (or a service's own
        # input, route guide's notes), a method the server does not have.
        except argparse.ArgumentTypeError as error:
            print(f"client: {printable(str(error))}", file=sys.stderr)
            return EXIT_USAGE
        # The reader went away (`client call ... | head`): stop quietly, as a tool
        # killed by SIGPIPE would, and leave the call to be cancelled with the channel.
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
    return 0
