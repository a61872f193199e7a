"""The call boundary on a real grpc.aio server in this process: a handler's unexpected
exception reaches the client as INTERNAL with a fixed message, and the log as a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from absl.testing import absltest

from python.runtime.call_boundary import INTERNAL_ERROR_DETAILS, Boundary
from python.runtime.handler_wrapping import WrappingRegistrar
from python.runtime.logs import FIELDS_ATTRIBUTE

SECRET = "db password is hunter2"


async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise ValueError(SECRET)


async def fail_mid_stream(
    request: bytes, context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    yield b"first"
    raise KeyError(SECRET)


async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not you")


async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


HANDLERS = grpc.method_handlers_generic_handler(
    "test.Service",
    {
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "FailMidStream": grpc.unary_stream_rpc_method_handler(fail_mid_stream),
        "Refuse": grpc.unary_unary_rpc_method_handler(refuse),
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
    },
)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# Ends as soon as the call has: the wrapper runs to its end, and logs what the client saw.
STOP_GRACE_SECONDS = 5


class CallBoundaryTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.records = Records()
        logging.getLogger("rpc").addHandler(self.records)
        self.addCleanup(logging.getLogger("rpc").removeHandler, self.records)

    def call(self, method: str, streaming: bool = False) -> tuple[grpc.StatusCode, str, list]:
        async def run() -> tuple[grpc.StatusCode, str, list]:
            server = grpc.aio.server()
            registrar = WrappingRegistrar(server, Boundary("proj"))
            registrar.add_generic_rpc_handlers((HANDLERS,))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            received: list = []
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    path = f"/test.Service/{method}"
                    if streaming:
                        call = channel.unary_stream(path)(b"x", timeout=10)
                        try:
                            async for message in call:
                                received.append(message)
                        except grpc.aio.AioRpcError:
                            pass
                    else:
                        call = channel.unary_unary(path)(b"x", timeout=10)
                        with contextlib.suppress(grpc.aio.AioRpcError):
                            received.append(await call)
                    return await call.code(), await call.details(), received
            finally:
                # With a grace: the call's status reached the client before its handler resumed
                # (one event loop runs both), and stop(None) would cancel it there, before the
                # wrapper has taken the code (a CANCELLED line, once in CI on 2026-12-04).
                await server.stop(STOP_GRACE_SECONDS)

        return asyncio.run(run())

    def fields(self) -> list[dict]:
        return [
            getattr(r, FIELDS_ATTRIBUTE)
            for r in self.records.records
            if hasattr(r, FIELDS_ATTRIBUTE)
        ]

    def test_unexpected_exception_is_internal_without_details(self) -> None:
        code, details, _ = self.call("Fail")
        self.assertEqual(code, grpc.StatusCode.INTERNAL)
        self.assertEqual(details, INTERNAL_ERROR_DETAILS)
        errors = [r for r in self.records.records if r.exc_info]
        self.assertLen(errors, 1)
        self.assertIn(SECRET, str(errors[0].exc_info[1]))
        self.assertEqual(self.fields()[0]["code"], "INTERNAL")

    def test_exception_mid_stream_is_internal_after_sent_messages(self) -> None:
        code, details, received = self.call("FailMidStream", streaming=True)
        self.assertEqual(received, [b"first"])
        self.assertEqual(code, grpc.StatusCode.INTERNAL)
        self.assertNotIn(SECRET, details)
        self.assertEqual(self.fields()[0]["method"], "/test.Service/FailMidStream")

    def test_abort_keeps_its_code_and_is_logged_with_it(self) -> None:
        code, details, _ = self.call("Refuse")
        self.assertEqual((code, details), (grpc.StatusCode.PERMISSION_DENIED, "not you"))
        self.assertEqual(self.fields()[0]["code"], "PERMISSION_DENIED")
        self.assertEqual(self.records.records[0].levelno, logging.WARNING)  # the caller's error

    def test_ok_call_is_logged(self) -> None:
        code, _, received = self.call("Echo")
        self.assertEqual((code, received), (grpc.StatusCode.OK, [b"x"]))
        (fields,) = self.fields()
        self.assertEqual((fields["method"], fields["code"]), ("/test.Service/Echo", "OK"))


if __name__ == "__main__":
    absltest.main()
