"""Server benchmark: `./bazelw run //tests/bench:server`. Prints numbers; asserts nothing.

h2load (Debian's nghttp2-client) drives real gRPC frames over HTTP/2 at the kit's test service
(tests/services/kittest's server binary, on the runtime, JSON logging on) and at a bare grpc.aio
server with the same servicer (bare_server.py): the kit's own service, so that the bench outlives
the samples. The service's binary runs as the cost goals of docs/observability.md name them:
--rpc_logs all, errors and none; logs and traces with every call sampled (`traces`,
OTEL_METRICS_EXPORTER=none); and logs, traces and metrics (`metrics`), both exporting to an OTLP
sink in this process (otlp_sink.py) that accepts every export. It reports for unary
TestService/Unary and server-streaming TestService/ServerStream (300 replies of about 40 bytes,
as the route guide sample's ListFeatures of its whole map, which the bench drove before): calls
(and messages) per second, p50/p99 latency, server CPU per call and its ratio to the bare
server's, and peak RSS; then the service's time from process start to SERVING.

A ratio is only worth reporting when it is not noise, so the measurement is built for that:
- the server runs on one CPU (`--server_cpu`, all its threads, set once it listens) and h2load
  on another (`--load_cpu`): unpinned, the two share both cores and the bare server's own CPU
  per call doubled in one run;
- rounds are interleaved, and each round reverses the order of the servers, so drift over the
  run (the machine warming, another process) reaches every server alike;
- each round's ratio is taken against the bare server of the same round, and the table shows
  the median ratio with its range over the rounds;
- this process (the OTLP sink, the threads that drain the servers' logs) runs on the load's
  CPU, so that nothing but the server runs on the server's.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from absl import app, flags
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kittest.v1 import test_service_pb2

from tests.bench.otlp_sink import OtlpSink

_CALLS = flags.DEFINE_integer("calls", 10000, "Unary calls per measurement (streams: 1/10).")
_ROUNDS = flags.DEFINE_integer(
    "rounds", 5, "Interleaved rounds per load; the median and range of the ratios are shown."
)
_STARTS = flags.DEFINE_integer("starts", 5, "Server starts timed for start-to-SERVING.")
_SERVER_CPU = flags.DEFINE_integer("server_cpu", 0, "The CPU every server thread runs on.")
_LOAD_CPU = flags.DEFINE_integer("load_cpu", 1, "The CPU h2load runs on.")
_COMPARE = flags.DEFINE_string(
    "compare",
    None,
    "Another build of the service's binary to measure in the same rounds, as rows `other "
    "logs=all` and `other traces`: a change's before and after in one interleaved run, e.g. "
    "the absolute path of bazel-bin/tests/services/kittest/server in a checkout of main.",
)

# (connections, concurrent streams on each): one call at a time, and 10 x 5.
CONCURRENCY = ((1, 1), (10, 5))
# A stream as the route guide sample's ListFeatures of its whole map was, which the bench drove
# before: 300 features of 39 bytes on average (name and point); a reply here is 37 to 40 bytes.
STREAM_REPLIES = 300
STREAM_REPLY_BYTES = 35
# The variable naming the service's binary on the runtime, which the bench measures.
SERVICE_VAR = "KITTEST_SERVER_BIN"
_LISTENING = re.compile(r"listening on \[::\]:(\d+)")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Load:
    name: str
    path: str
    request: bytes
    calls: int
    messages_per_call: int = 1


@dataclasses.dataclass
class Result:
    calls_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_per_10k: float


def pin(pid: int, cpu: int) -> None:
    """Every thread of `pid` onto `cpu`; threads it starts later inherit it."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpu})


def runfile(env_var: str) -> str:
    return str(Path(os.environ[env_var]).resolve())


def grpc_frame(message: bytes) -> bytes:
    return struct.pack(">?I", False, len(message)) + message


# What this process's launcher set to find its runfiles, where the bench's servers find theirs:
# a binary of another build (--compare) given these would run this build's code.
_RUNFILES_VARIABLES = frozenset({"PYTHONPATH", "RUNFILES_DIR", "RUNFILES_MANIFEST_FILE"})


def server_environment(
    env: dict[str, str] | None = None, other_build: bool = False
) -> dict[str, str]:
    """The servers' environment: bytecode is written to and read from `_PYCACHE` (as the image
    ships its .pyc files): compiling a module's source at every start, as under
    PYTHONDONTWRITEBYTECODE, added the compiler's memory (16 MiB for descriptor_pb2.py alone)
    to each server's peak RSS. A binary of `other_build` finds its own runfiles."""
    dropped = {"PYTHONDONTWRITEBYTECODE", *(_RUNFILES_VARIABLES if other_build else ())}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**base, "PYTHONPYCACHEPREFIX": str(_PYCACHE), "PORT": "0", **(env or {})}


_PYCACHE = Path()  # main() sets it: a directory of its scratch one


class ServerProcess:
    def __init__(
        self, command: list[str], env: dict[str, str] | None = None, other_build: bool = False
    ) -> None:
        self.process = subprocess.Popen(
            command,
            env=server_environment(env, other_build),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if match := _LISTENING.search(line):
                self.port = int(match[1])
                break
        else:
            raise RuntimeError(f"{command[0]} exited before listening")
        # Drain the logs as a log collector would, so the pipe never blocks the server.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        pin(self.process.pid, _SERVER_CPU.value)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def h2load(port: int, load: Load, concurrency: tuple[int, int], scratch: Path) -> list[float]:
    """Runs the load on its own CPU; returns each call's latency in milliseconds."""
    body, log = scratch / "body", scratch / "log"
    body.write_bytes(grpc_frame(load.request))
    log.unlink(missing_ok=True)  # h2load appends to an existing log
    clients, streams = concurrency
    calls = max(load.calls, clients * streams)
    result = subprocess.run(
        [
            "taskset",
            "--cpu-list",
            str(_LOAD_CPU.value),
            "h2load",
            f"--clients={clients}",
            f"--max-concurrent-streams={streams}",
            f"--requests={calls}",
            f"--data={body}",
            f"--log-file={log}",
            "--header=content-type: application/grpc",
            "--header=te: trailers",
            f"http://127.0.0.1:{port}{load.path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or f"{calls} succeeded" not in result.stdout:
        raise RuntimeError(f"h2load failed:\n{result.stdout}{result.stderr}")
    latencies = [int(row.split("\t")[2]) / 1000 for row in log.read_text().splitlines()]
    if len(latencies) != calls:
        raise RuntimeError(f"h2load logged {len(latencies)} calls, not {calls}")
    return latencies


def measure(
    server: ServerProcess, load: Load, concurrency: tuple[int, int], scratch: Path
) -> Result:
    h2load(
        server.port, dataclasses.replace(load, calls=load.calls // 10), concurrency, scratch
    )  # warm-up
    cpu_before, started = server.cpu_seconds(), time.perf_counter()
    latencies = h2load(server.port, load, concurrency, scratch)
    elapsed, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu_before
    quantiles = statistics.quantiles(latencies, n=100)
    return Result(
        calls_per_second=len(latencies) / elapsed,
        p50_ms=quantiles[49],
        p99_ms=quantiles[98],
        cpu_per_10k=cpu / len(latencies) * 10_000,
    )


def median_result(results: list[Result]) -> Result:
    """The round with the median CPU cost: one whole measurement, not a mix of rounds."""
    return sorted(results, key=lambda r: r.cpu_per_10k)[len(results) // 2]


def ratio_summary(ratios: list[float]) -> str:
    """`1.28x (1.24-1.33)`: the median of the rounds' ratios, and their range."""
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def start_to_serving(server_bin: str) -> list[float]:
    times = []
    for _ in range(_STARTS.value):
        started = time.perf_counter()
        process = subprocess.Popen(
            [server_bin], env=server_environment(), stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        port = next(int(m[1]) for line in process.stdout if (m := _LISTENING.search(line)))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status != 1:
                time.sleep(0.001)
        times.append(time.perf_counter() - started)
        process.terminate()
        process.wait(30)
    return times


def main(argv: list[str]) -> None:
    del argv
    if not shutil.which("h2load") or not shutil.which("taskset"):
        sys.exit(
            "server_bench: h2load or taskset not found; install Debian's nghttp2-client and "
            "util-linux (./bazelw's root has them)"
        )
    usable = os.sched_getaffinity(0)
    if {_SERVER_CPU.value, _LOAD_CPU.value} - usable or _SERVER_CPU.value == _LOAD_CPU.value:
        sys.exit(
            f"server_bench: --server_cpu and --load_cpu must be two different CPUs of "
            f"{sorted(usable)}: on one CPU the ratios are noise"
        )
    if _COMPARE.value and not os.access(_COMPARE.value, os.X_OK):
        sys.exit(
            f"server_bench: --compare={_COMPARE.value} is not an executable here (under "
            "./bazelw's root only this workspace and Bazel's output root are visible)"
        )
    calls = _CALLS.value
    stream = test_service_pb2.ServerStreamRequest(
        count=STREAM_REPLIES, reply_bytes=STREAM_REPLY_BYTES
    )
    loads = [
        Load(
            "unary Unary",
            "/kittest.v1.TestService/Unary",
            test_service_pb2.UnaryRequest(message="ping").SerializeToString(),
            calls,
        ),
        Load(
            f"stream ServerStream ({STREAM_REPLIES} msgs)",
            "/kittest.v1.TestService/ServerStream",
            stream.SerializeToString(),
            calls // 10,
            messages_per_call=STREAM_REPLIES,
        ),
    ]
    print(
        f"server on CPU {_SERVER_CPU.value}, h2load on CPU {_LOAD_CPU.value}; "
        f"{_ROUNDS.value} interleaved rounds; figures of the median round, ratio: median "
        "(range) over the rounds"
    )
    print(
        f"{'load':32} {'server':14} {'conc':>6} {'calls/s':>9} {'msgs/s':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'CPU s/10k':>9}  vs bare"
    )
    # This process's threads (the sink, the log drains) stay off the server's CPU.
    os.sched_setaffinity(0, {_LOAD_CPU.value})
    global _PYCACHE
    with tempfile.TemporaryDirectory() as scratch, OtlpSink() as sink:
        _PYCACHE = Path(scratch) / "pycache"
        # Each server once, so that every measured start reads the bytecode this one wrote.
        for server in servers(sink).values():
            server.stop()
        for load in loads:
            measure_load(load, Path(scratch), sink)
        print(f"OTLP sink: {sink.spans_bytes} bytes of spans, {sink.metrics_bytes} of metrics")
        times = start_to_serving(runfile(SERVICE_VAR))
        print(
            f"{SERVICE_VAR}: process start to SERVING: median "
            f"{statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms ({len(times)} starts)"
        )


def servers(sink: OtlpSink) -> dict[str, ServerProcess]:
    """The bare server and the service's own binary in each setting the goals name."""
    production = runfile(SERVICE_VAR)
    logged = {"GOOGLE_CLOUD_PROJECT": "bench"}
    # Every call sampled, exported to the sink; `traces` without metrics, `metrics` with them.
    traced = {
        **logged,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    }
    spans_only = {**traced, "OTEL_METRICS_EXPORTER": "none"}
    started = {
        "bare": ServerProcess([runfile("BARE_SERVER_BIN")]),
        **{
            f"logs={setting}": ServerProcess([production, f"--rpc_logs={setting}"], env=logged)
            for setting in ("all", "errors", "none")
        },
        "traces": ServerProcess([production, "--rpc_logs=all"], env=spans_only),
        "metrics": ServerProcess([production, "--rpc_logs=all"], env=traced),
    }
    if other := _COMPARE.value:
        for name, env in (("other logs=all", logged), ("other traces", spans_only)):
            started[name] = ServerProcess([other, "--rpc_logs=all"], env, other_build=True)
    return started


def measure_load(load: Load, scratch: Path, sink: OtlpSink) -> None:
    """Each concurrency against the bare server and the service's own binary, by setting."""
    started = servers(sink)
    try:
        for concurrency in CONCURRENCY:
            rounds: dict[str, list[Result]] = {name: [] for name in started}
            order = list(started)
            for _ in range(_ROUNDS.value):
                for name in order:
                    rounds[name].append(measure(started[name], load, concurrency, scratch))
                order.reverse()
            bare = [r.cpu_per_10k for r in rounds["bare"]]
            label = f"{concurrency[0]}x{concurrency[1]}"
            for name, results in rounds.items():
                r = median_result(results)
                ratios = [one.cpu_per_10k / base for one, base in zip(results, bare, strict=True)]
                print(
                    f"{load.name:32} {name:14} {label:>6} {r.calls_per_second:>9.0f} "
                    f"{r.calls_per_second * load.messages_per_call:>9.0f} "
                    f"{r.p50_ms:>7.3f} {r.p99_ms:>7.3f} {r.cpu_per_10k:>9.3f}  "
                    f"{ratio_summary(ratios)}"
                )
        print(
            f"{load.name}: peak RSS: "
            + ", ".join(f"{n} {s.peak_rss_mib():.1f} MiB" for n, s in started.items())
        )
    finally:
        for server in started.values():
            server.stop()


if __name__ == "__main__":
    app.run(main)
