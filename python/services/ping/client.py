"""Ping's client: the kit's client (python/client: health, call, list, describe) with ping's own
subcommands, on the generated stubs. `bazel run //python/services/ping:client -- ping --server
localhost:8080 --insecure --message hello`."""

from __future__ import annotations

import argparse
import sys

import grpc
from ping.v1 import ping_pb2, ping_pb2_grpc

from python.client import main
from python.client.commands import add_command, call_options
from python.client.printing import Printer


def ping(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = ping_pb2_grpc.PingServiceStub(channel)
    show(stub.Send(ping_pb2.Request(message=args.message), **call_options(args)))


def relay(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = ping_pb2_grpc.PingServiceStub(channel)
    show(stub.SendUpstream(ping_pb2.Request(message=args.message), **call_options(args)))


def add_subcommands(
    subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> None:
    """ping and relay, each also taking the flags of `parents` (the global flags)."""
    for name, function, help_text in (
        ("ping", ping, "PingService.Send: the server answers with a pong."),
        ("relay", relay, "PingService.SendUpstream: the server relays to its upstream."),
    ):
        command = add_command(subparsers, parents, name, function, help_text)
        command.add_argument("--message", default="ping")


if __name__ == "__main__":
    sys.exit(main.main(sys.argv[1:], [add_subcommands]))
