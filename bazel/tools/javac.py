"""Compiles Java for the kit's jvm_library, java_proto_library and java_grpc_library rules:
`javac.py --javac JAVAC --out JAR [--classpath JAR]... [--srcjar ZIP]... [FILE.java]...`.

Sources are .java files and source archives (protoc's `--java_out=x.srcjar`); javac writes the
classes, which go into a jar made here rather than by the JDK's `jar`, so that the same sources
give the same bytes: entries sorted, every timestamp the same, a fixed manifest. Errors are
javac's own, printed as it prints them; the exit status is javac's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
RELEASE = "21"  # the Java the classes run on: the oldest JDK the kit supports
MANIFEST = b"Manifest-Version: 1.0\r\nCreated-By: cloud-run-grpc-kit\r\n\r\n"


def write_jar(classes: Path, out: Path) -> None:
    """Every file under `classes` into `out`, with a manifest, deterministically."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as jar:
        for name, data in [("META-INF/", b""), ("META-INF/MANIFEST.MF", MANIFEST)]:
            jar.writestr(zipfile.ZipInfo(name, EPOCH), data)
        for path in sorted(p for p in classes.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(classes).as_posix(), EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            jar.writestr(info, path.read_bytes())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--javac", required=True, help="the JDK's javac")
    parser.add_argument("--out", required=True, type=Path, help="the jar to write")
    parser.add_argument("--classpath", action="append", default=[], help="a jar to compile against")
    parser.add_argument("--srcjar", action="append", default=[], type=Path, help="a source archive")
    parser.add_argument("sources", nargs="*", type=Path, help=".java files")
    args = parser.parse_args(argv[1:])

    with tempfile.TemporaryDirectory() as scratch:
        unpacked, classes = Path(scratch, "srcjars"), Path(scratch, "classes")
        classes.mkdir()
        sources = [str(s) for s in args.sources]
        for number, srcjar in enumerate(args.srcjar):
            directory = unpacked / str(number)
            with zipfile.ZipFile(srcjar) as archive:
                archive.extractall(directory)
            sources += sorted(str(p) for p in directory.rglob("*.java"))
        if sources:
            command = [
                args.javac,
                "--release", RELEASE,
                "-sourcepath", "",  # only the sources given, never some on the classpath
                "-encoding", "UTF-8",
                "-proc:none",  # no annotation processors: none are on the classpath
                "-implicit:none",
                "-nowarn",
                "-d", str(classes),
                "-cp", ":".join(args.classpath),
                *sources,
            ]  # fmt: skip
            status = subprocess.run(command, check=False).returncode
            if status != 0:
                return status
        write_jar(classes, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
