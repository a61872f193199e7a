"""@java_debs (bazel/private/deb_java_repository.bzl) from java/deps/debs.lock.json.

protoc must be the version of the protobuf jar (protoc's Java output is only for its own
runtime), run on the .deb's own libprotoc and libprotobuf (the ./bazelw root's /usr/lib has
another libprotoc.so.32), with grpc-java's plugin generating a service's stub; the jars must
be files without the manifest Class-Path that would load the machine's /usr/share/java; jni/
must hold netty-tcnative under the name it checks, loadable with the libraries next to it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

PROTOC = Path(os.environ["PROTOC"]).absolute()
PLUGIN = Path(os.environ["PLUGIN"]).absolute()
JARS = [Path(jar) for jar in os.environ["JARS"].split()]
TCNATIVE_LIBS = [Path(lib) for lib in os.environ["TCNATIVE_LIBS"].split()]
VERSIONS = json.loads(Path(os.environ["VERSIONS"]).read_text())
GENRULE_OUTPUT = Path(os.environ["GENRULE_OUTPUT"])
PROTOBUF_VERSION = "3.21.12"

SERVICE = """\
syntax = "proto3";
package test.pinger;
option java_package = "test.pinger";
option java_multiple_files = true;
message PingRequest { string message = 1; }
message PingResponse { string message = 1; }
service Pinger { rpc Ping(PingRequest) returns (PingResponse); }
"""


def upstream(version: str) -> str:
    """The upstream part of a Debian version: 1:4.1.48-10+deb13u1 -> 4.1.48."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0].split("+", 1)[0]


def loaded_libraries(command: list[str], env: dict[str, str] | None = None) -> dict[str, str]:
    """soname -> the file the dynamic loader loaded it from, from LD_DEBUG=libs."""
    result = subprocess.run(
        command,
        env=(env or os.environ) | {"LD_DEBUG": "libs"},
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    loaded = {}
    for line in result.stderr.splitlines():
        # "   1234:	calling init: /path/libprotoc.so.32"
        if match := re.search(r"calling init: (\S+)", line):
            loaded[Path(match[1]).name] = match[1]
    return loaded


class JavaDebsTest(unittest.TestCase):
    def test_protoc_is_the_protobuf_jars_version(self) -> None:
        result = subprocess.run([PROTOC, "--version"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), f"libprotoc {PROTOBUF_VERSION}")
        packages = VERSIONS["packages"]
        for package in ("protobuf-compiler", "libprotoc32t64", "libprotobuf-java"):
            self.assertEqual(upstream(packages[package]), PROTOBUF_VERSION, package)
        self.assertEqual(packages["protobuf-compiler"], packages["libprotobuf-java"])
        self.assertEqual(
            VERSIONS["jars"]["protobuf"], f"/usr/share/java/protobuf-{PROTOBUF_VERSION}.jar"
        )
        grpc = upstream(packages["libgrpc-java"])
        self.assertEqual(upstream(packages["protobuf-compiler-grpc-java-plugin"]), grpc)
        for name in ("grpc-api", "grpc-core", "grpc-netty", "grpc-protobuf", "grpc-stub"):
            self.assertEqual(VERSIONS["jars"][name], f"/usr/share/java/{name}-{grpc}.jar")

    def test_protoc_and_plugin_load_the_debs_libraries(self) -> None:
        for command in ([PROTOC, "--version"], [PLUGIN, "--version"]):
            loaded = loaded_libraries([str(c) for c in command])
            for soname in ("libprotoc.so.32", "libprotobuf.so.32"):
                with self.subTest(command=command[0].name, soname=soname):
                    self.assertIn(soname, loaded)
                    path = Path(loaded[soname])
                    self.assertTrue(
                        str(path.parent).endswith("/rootfs/usr/lib/x86_64-linux-gnu"), path
                    )
                    self.assertIn("java_debs", str(path))

    def test_without_the_wrapper_protoc_would_load_the_machines(self) -> None:
        # The check above means something where the machine has its own libprotoc.so.32 (the
        # ./bazelw root has sid's): the .deb's protoc run directly loads that one.
        machine = [p for p in Path("/usr/lib/x86_64-linux-gnu").glob("libprotoc.so.32*")]
        if not machine:
            self.skipTest("the machine has no libprotoc.so.32")
        binary = (PROTOC.parent / "rootfs/usr/bin/protoc").absolute()
        env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        loaded = loaded_libraries([str(binary), "--version"], env=env)
        self.assertTrue(loaded["libprotoc.so.32"].startswith("/usr/lib/"), loaded)

    def test_plugin_generates_a_service_stub(self) -> None:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as tmp:
            (Path(tmp) / "pinger.proto").write_text(SERVICE)
            (Path(tmp) / "out").mkdir()
            result = subprocess.run(
                [
                    PROTOC,
                    f"--plugin=protoc-gen-grpc-java={PLUGIN}",
                    "--java_out=out",
                    "--grpc-java_out=out",
                    "pinger.proto",
                ],
                cwd=tmp,
                capture_output=True,
                text=True,
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            stub = (Path(tmp) / "out/test/pinger/PingerGrpc.java").read_text()
            self.assertIn("@javax.annotation.Generated", stub)
            self.assertIn("io.grpc.MethodDescriptor<test.pinger.PingRequest,", stub)
            message = (Path(tmp) / "out/test/pinger/PingRequest.java").read_text()
            # protobuf 3.x's runtime API (4.x generates against GeneratedMessage).
            self.assertIn("com.google.protobuf.GeneratedMessageV3", message)

    def test_plugin_runs_as_an_actions_tool(self) -> None:
        self.assertIn("public final class PingerGrpc", GENRULE_OUTPUT.read_text())

    def test_jars_are_files_without_class_path(self) -> None:
        self.assertEqual(len(JARS), 23)  # grpc-java and its runtime (22), and picocli
        for jar in JARS:
            with self.subTest(jar=jar.name):
                self.assertEqual(jar.parent.name, "jars")
                self.assertTrue(jar.resolve().is_file())
                self.assertEqual(jar.resolve().name, jar.name)
                self.assertEqual(jar.resolve().parent.name, "jars")
                with zipfile.ZipFile(jar) as archive:
                    self.assertIsNone(archive.testzip())
                    manifest = archive.read("META-INF/MANIFEST.MF").decode()
                    names = archive.namelist()
                self.assertTrue(manifest.startswith("Manifest-Version: 1.0"), manifest)
                self.assertNotRegex(manifest, r"(?im)^(class-path|main-class):")
                self.assertNotIn("/usr/share/java", manifest)
                self.assertTrue(any(name.endswith(".class") for name in names))

    def test_tcnative_loads_with_the_libraries_next_to_it(self) -> None:
        names = sorted(lib.name for lib in TCNATIVE_LIBS)
        for name in ("libnetty_tcnative.so", "libapr-1.so.0", "libuuid.so.1", "libssl.so.3"):
            self.assertIn(name, names)
        self.assertIn("libcrypto.so.3", names)
        self.assertEqual(len({lib.parent for lib in TCNATIVE_LIBS}), 1)
        tcnative = next(lib for lib in TCNATIVE_LIBS if lib.name == "libnetty_tcnative.so")
        self.assertEqual(tcnative.resolve().name, "libnetty_tcnative.so")
        jni = tcnative.parent.absolute()
        loaded = loaded_libraries(
            [sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(jni / tcnative.name)!r})"],
            env=os.environ | {"LD_LIBRARY_PATH": str(jni)},
        )
        for soname in ("libnetty_tcnative.so", "libapr-1.so.0", "libssl.so.3", "libcrypto.so.3"):
            with self.subTest(soname=soname):
                self.assertIn(soname, loaded)
                self.assertEqual(Path(loaded[soname]).parent, jni)


if __name__ == "__main__":
    unittest.main()
