"""The public way to give the client a subcommand, and the kit's one subcommand on generated code,
`health`. A service's own client (python/services/ping/client.py) declares its subcommands with
add_command() in an `add_subcommands(subparsers, parents)` of its own and hands it to main.main().

A subcommand is a function that makes its calls on the shared channel with call_options(args)
(the global --timeout, --wait_for_ready and -H) and shows each message it gets with `show`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from python.client.printing import Printer

Command = Callable[[grpc.Channel, argparse.Namespace, Printer], None]
# What main.main() takes from a service: its subcommands, added to `subparsers`, each with
# `parents` (the global flags after the subcommand).
AddSubcommands = Callable[[argparse._SubParsersAction, list[argparse.ArgumentParser]], None]


def add_command(
    subparsers: argparse._SubParsersAction,
    parents: list[argparse.ArgumentParser],
    name: str,
    function: Command,
    help_text: str,
    printer: type[Printer] = Printer,
) -> argparse.ArgumentParser:
    """Subcommand `name` running `function`, which shows messages with a `printer`; returns its
    parser, for the subcommand's own arguments."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=parents)
    parser.set_defaults(command=function, printer=printer)
    return parser


def call_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of a stub's call that the global flags set."""
    return {
        "timeout": args.timeout,
        "wait_for_ready": args.wait_for_ready,
        "metadata": args.headers or None,
    }


def health(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=args.service)
    if not args.watch:
        show(stub.Check(request, **call_options(args)))
        return
    started = time.monotonic()
    watch_timeout = None if args.watch_seconds is None else args.watch_seconds
    try:
        watch_options = {**call_options(args), "timeout": watch_timeout}
        for status in stub.Watch(request, **watch_options):
            show(status)
    except grpc.RpcError as error:
        # Watching for a while and then stopping is success, not a failure.
        ran_out = error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        if not (ran_out and time.monotonic() - started >= (watch_timeout or 0)):
            raise


def add_subcommands(
    subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> None:
    """`health`, which every kit server answers."""
    check = add_command(
        subparsers, parents, "health", health, "grpc.health.v1.Health: Check, or Watch."
    )
    check.add_argument("--service", default="", help="service name; empty: the whole server")
    check.add_argument("--watch", action="store_true", help="stream status changes")
    check.add_argument("--watch_seconds", type=float, help="with --watch: stop after this long")
