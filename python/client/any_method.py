"""`client call`, `list` and `describe`: any method of any service through the server's
reflection, as grpcurl does it, so a new service or method needs no code in the client.

This module only declares the subcommands: the reflection client and the dynamic message classes
are imported when one of them runs, so `client health`, or a service's own subcommand, starts no
slower for them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import grpc

from python.client.commands import add_command
from python.client.printing import Printer, printable

if TYPE_CHECKING:
    from python.client.server_reflection import CallOptions

METHOD_HELP = (
    "SERVICE/METHOD or SERVICE.METHOD; SERVICE by its full name (routeguide.v1.RouteGuide) or a"
    " last part only one service has (RouteGuide)"
)


# Each command imports what it runs on when it runs (see the docstring).


def _options(args: argparse.Namespace) -> CallOptions:
    from python.client.server_reflection import CallOptions

    return CallOptions(args.timeout, args.wait_for_ready, args.headers)


def call(channel: grpc.Channel, args: argparse.Namespace, _: Printer) -> None:
    from python.client import dynamic_call

    dynamic_call.call(channel, args, _options(args))


def list_services(channel: grpc.Channel, args: argparse.Namespace, _: Printer) -> None:
    from python.client.server_reflection import Reflection

    for name in Reflection(channel, _options(args)).services():
        print(printable(name), flush=True)


def describe(channel: grpc.Channel, args: argparse.Namespace, _: Printer) -> None:
    from python.client import describe as declarations
    from python.client.server_reflection import Reflection

    reflection = Reflection(channel, _options(args))
    names = [args.symbol] if args.symbol else reflection.services()
    # The declarations' lines are the client's; the names in them are the server's.
    described = (declarations.describe(reflection.symbol(name)) for name in names)
    print("\n\n".join("\n".join(map(printable, d.split("\n"))) for d in described))


def add_subcommands(
    subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> None:
    """call, list and describe, each also taking the flags of `parents` (the global flags, -H
    among them)."""

    def command(name: str, function, help_text: str) -> argparse.ArgumentParser:
        return add_command(subparsers, parents, name, function, help_text)

    calling = command(
        "call",
        call,
        "Any method, through the server's reflection: JSON requests in, one JSON line per"
        " response out.",
    )
    calling.add_argument("method", help=METHOD_HELP)
    calling.add_argument(
        "requests",
        nargs="*",
        metavar="JSON",
        help="one request each (a unary or server-streaming method takes one); none: one JSON"
        " object a line of stdin",
    )
    command("list", list_services, "The services the server offers, through its reflection.")
    describing = command(
        "describe",
        describe,
        "Declarations of a service (its methods and their streaming kinds), a method with its"
        " types, a message or an enum, through the server's reflection.",
    )
    describing.add_argument(
        "symbol",
        nargs="?",
        help="a full name (or SERVICE/METHOD); none: every service",
    )
