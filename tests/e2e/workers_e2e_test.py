"""--workers: the processes serve one port; SIGTERM ends every one of them with exit code 0,
even while they are still starting; a worker that dies stops the group; and a parent killed
with SIGKILL leaves no orphans."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import grpc
from absl.testing import absltest
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from python.testing import serving
from tests.e2e.processes import KITTEST_SERVER, Server, binary

CONNECTIONS = 40
# Enough workers that forking them, and starting them on the test machine's cores, takes a
# while for a signal to land in.
STARTING_WORKERS = 4
# A worker whose parent died drains like on SIGTERM; with nothing in flight that is quick.
ORPHAN_SECONDS = 5.0
# Streams in flight on the worker left when the other dies, with this long between replies.
DRAINED_CALLS = 3
DRAINED_CALL_SECONDS = 2
# Starts that each get one Ctrl-C: a worker taking it twice is a race (with the workers in the
# parent's process group, 5 of 10 starts had a worker exit at once, in each of 2 runs; 5
# starts miss it 1 run in 32).
CTRL_C_STARTS = 5
_STARTED = re.compile(r"started \d+ workers: \[([\d, ]+)\]")
_EXITED = re.compile(r"worker (\d+) exited with (\d+)")


def worker_pids(entries: list[dict]) -> list[int]:
    """The pids the parent logged when it had forked every worker."""
    for entry in entries:
        if match := _STARTED.fullmatch(entry["message"]):
            return [int(pid) for pid in match[1].split(",")]
    raise AssertionError(f"no 'started N workers' line in {entries}")


def running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie has exited, whoever is left to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def has_forked_a_worker(pid: int) -> bool:
    """The server's process, once it is Python, has a child that runs its own executable: a
    forked worker. The launchers on the way to Python (the py_binary stub, the interpreter's
    shell launcher, which forks for a `$(...)`) have children too, and Python runs as the
    image's loader (/proc/PID/exe), hence the look at what the process has mapped."""
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    if not any(line.rpartition("/")[2].startswith("python3") for line in maps.splitlines()):
        return False
    for child in children:
        try:
            if os.readlink(f"/proc/{child}/exe") == executable:
                return True
        except OSError:
            continue  # gone already
    return False


def listeners_on(port: int) -> int:
    """TCP sockets listening on `port`, from the kernel's tables. (Binding the port to see if
    it is free would race any other process's outgoing connection that the kernel gave that
    local port.)"""
    listening = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state = int(fields[1].rsplit(":", 1)[1], 16), fields[3]
            listening += local_port == port and state == "0A"  # 0A: TCP_LISTEN
    return listening


def call(port: int) -> None:
    # Each on a connection of its own: the kernel spreads connections, not calls, over workers.
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        test_service_pb2_grpc.TestServiceStub(channel).Unary(
            pb.UnaryRequest(message="x"), timeout=10
        )


class WorkersTest(absltest.TestCase):
    def test_both_workers_answer_and_drain(self) -> None:
        with Server("--workers=2", listeners=2, binary_var=KITTEST_SERVER) as server:
            for _ in range(CONNECTIONS):
                call(server.port)
            sends = server.wait_for_logs(
                lambda e: e.get("method") == "/kittest.v1.TestService/Unary", CONNECTIONS
            )
            pids = {e["pid"] for e in sends}
            self.assertLen(pids, 2, f"calls answered by {pids}")
            self.assertNotIn(server.process.pid, pids, "the parent only supervises")
            server.stop()  # fails unless the exit status is 0
        stopped = server.wait_for_logs(lambda e: e["message"] == "stopped", count=2)
        self.assertEqual({e["pid"] for e in stopped}, pids)

    def test_sigterm_while_workers_start_ends_each_with_0(self) -> None:
        for when in ("while forking", "once all are forked"):
            with self.subTest(when):
                # Unbuffered: the lines read before the signal are not lost to communicate().
                process = subprocess.Popen(
                    [binary(KITTEST_SERVER), f"--workers={STARTING_WORKERS}"],
                    env=serving.child_environment({"PORT": "0"}),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    bufsize=0,
                )
                assert process.stdout is not None
                before = b""
                try:
                    if when == "while forking":
                        deadline = time.monotonic() + 30
                        while not has_forked_a_worker(process.pid):
                            self.assertLess(time.monotonic(), deadline, "no worker forked")
                            time.sleep(0.0002)
                    else:
                        while b"workers: [" not in before:
                            line = process.stdout.readline()
                            self.assertTrue(line, f"no 'started' line: {before!r}")
                            before += line
                    process.send_signal(signal.SIGTERM)
                    rest, _ = process.communicate(timeout=30)
                finally:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
                output = (before + rest).decode()
                self.assertEqual(process.returncode, 0, output)
                entries = [json.loads(line) for line in output.splitlines() if line[:1] == "{"]
                pids = worker_pids(entries)
                exits = {
                    int(match[1]): int(match[2])
                    for entry in entries
                    if (match := _EXITED.fullmatch(entry["message"]))
                }
                self.assertEqual(exits, dict.fromkeys(pids, 0), output)
                self.assertEqual([pid for pid in pids if running(pid)], [], output)

    def test_ctrl_c_drains_every_worker(self) -> None:
        """Ctrl-C at a terminal sends SIGINT to the whole foreground process group: the parent
        and each worker. That is one Ctrl-C, and must drain like one (exit 0, a "stopped" line
        each), not count as the second that means "exit now". Several starts: the worker's own
        SIGINT and the one the parent forwards merge in the kernel when both come before the
        worker takes the first."""
        for start in range(CTRL_C_STARTS):
            with self.subTest(start=start):
                process = subprocess.Popen(
                    [binary(KITTEST_SERVER), f"--workers={STARTING_WORKERS}"],
                    env=serving.child_environment({"PORT": "0"}),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    bufsize=0,
                    start_new_session=True,  # a process group of its own, as at a terminal
                )
                assert process.stdout is not None
                before = b""
                try:
                    while before.count(b"listening on") < STARTING_WORKERS:
                        line = process.stdout.readline()
                        self.assertTrue(line, f"not every worker listened: {before!r}")
                        before += line
                    os.killpg(process.pid, signal.SIGINT)
                    rest, _ = process.communicate(timeout=30)
                finally:
                    if process.poll() is None:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
                output = (before + rest).decode()
                self.assertNotIn("second SIGINT", output)
                self.assertEqual(process.returncode, 0, output)
                entries = [json.loads(line) for line in output.splitlines() if line[:1] == "{"]
                pids = worker_pids(entries)
                stopped = {e["pid"] for e in entries if e["message"] == "stopped"}
                self.assertEqual(stopped, set(pids), output)

    def test_sigterm_after_a_worker_died_lets_the_others_drain(self) -> None:
        """When a worker dies the parent asks the others to drain; Cloud Run's SIGTERM that
        follows must not be their second ("exit now"): the calls they run still end OK."""
        with Server("--workers=2", listeners=2, binary_var=KITTEST_SERVER) as server:
            pids = worker_pids([server.wait_for_log(lambda e: _STARTED.fullmatch(e["message"]))])
            options = [("grpc.use_local_subchannel_pool", 1)]
            channels = []
            while len(channels) < DRAINED_CALLS:
                channel = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options)
                self.addCleanup(channel.close)
                stub = test_service_pb2_grpc.TestServiceStub(channel)
                if stub.Unary(pb.UnaryRequest(message="which"), timeout=10).pid == pids[1]:
                    channels.append(stub)  # a connection to the worker that lives
            # In flight for sure once its first reply came; the second comes after the SIGTERM.
            request = pb.ServerStreamRequest(count=2)
            request.interval.FromSeconds(DRAINED_CALL_SECONDS)
            streams = [stub.ServerStream(request, timeout=30) for stub in channels]
            self.assertEqual([next(stream).index for stream in streams], [0] * DRAINED_CALLS)
            os.kill(pids[0], signal.SIGKILL)
            server.wait_for_log(lambda e: e["message"].startswith(f"worker {pids[0]} exited"))
            server.process.send_signal(signal.SIGTERM)
            # The rest of each stream, and its OK end (an RpcError fails the test here).
            self.assertEqual(
                [[r.index for r in stream] for stream in streams], [[1]] * DRAINED_CALLS
            )
            self.assertEqual(server.wait(), 128 + signal.SIGKILL, server.lines)
            self.assertNotIn("second SIGTERM", "\n".join(server.lines))
            stopped = server.wait_for_logs(lambda e: e["message"] == "stopped")
            self.assertEqual({e["pid"] for e in stopped}, {pids[1]})

    def test_workers_exit_when_the_parent_is_killed(self) -> None:
        with Server("--workers=2", listeners=2, binary_var=KITTEST_SERVER) as server:
            pids = worker_pids([server.wait_for_log(lambda e: _STARTED.fullmatch(e["message"]))])
            call(server.port)
            self.assertEqual(listeners_on(server.port), 2, "one listener per worker")
            server.process.kill()
            server.process.wait()
            deadline = time.monotonic() + ORPHAN_SECONDS
            while any(running(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual([pid for pid in pids if running(pid)], [], server.lines)
            # They drained (a "stopped" line each), and left nothing listening on the port.
            stopped = server.wait_for_logs(lambda e: e["message"] == "stopped", count=2)
            self.assertEqual({e["pid"] for e in stopped}, set(pids))
            self.assertEqual(listeners_on(server.port), 0)

    def test_a_worker_that_dies_takes_the_group_down(self) -> None:
        """A worker killed while serving: the parent stops the other (which drains), and exits
        with the dead one's status, so that Cloud Run replaces the instance."""
        with Server("--workers=2", listeners=2, binary_var=KITTEST_SERVER) as server:
            pids = worker_pids([server.wait_for_log(lambda e: _STARTED.fullmatch(e["message"]))])
            call(server.port)
            os.kill(pids[0], signal.SIGKILL)
            self.assertEqual(server.wait(), 128 + signal.SIGKILL, server.lines)
            died = server.wait_for_log(lambda e: e["message"].startswith(f"worker {pids[0]} "))
            self.assertEqual(died["severity"], "ERROR")
            self.assertEqual(
                died["message"], f"worker {pids[0]} exited with 137: stopping the others"
            )
            stopped = server.wait_for_logs(lambda e: e["message"] == "stopped")
            self.assertEqual({e["pid"] for e in stopped}, {pids[1]})
            self.assertEqual([pid for pid in pids if running(pid)], [])
            self.assertEqual(listeners_on(server.port), 0)


if __name__ == "__main__":
    absltest.main()
