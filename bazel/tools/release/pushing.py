"""The push step of a release: the kit's push tool (bazel/tools/push, what `//deploy:push`
runs) on the chosen services, so images, SBOMs and tags go up exactly as a push does; then each
service's manifest as the push resolved it (image in the repository pushed to, by digest).

It runs as its own process: its summary lines are its stdout, which a release keeps off its
own stdout (that is the table or the JSON), and its exit status is per push.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bazel.tools.release.spec import Spec


def push(spec: Spec, repository: str | None, extra: list[str]) -> dict[str, dict | str]:
    """Service -> its resolved manifest (a dict), or why its push failed (a str)."""
    with tempfile.TemporaryDirectory(prefix="release-push-") as scratch:
        directory = Path(scratch)
        push_spec = directory / "push.json"
        push_spec.write_text(
            json.dumps(
                {
                    "repository": spec.repository,
                    "services": [s.push_entry for s in spec.services],
                    "status_files": spec.status_files,
                }
            ),
            encoding="utf-8",
        )
        manifests = directory / "manifests"
        command = [str(spec.push_tool), "--spec", str(push_spec), "--manifest_dir", str(manifests)]
        if repository:
            command += ["--repository", repository]
        done = subprocess.run(
            command + extra, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False
        )
        lines = done.stdout.splitlines()
        for line in lines:
            print(f"push: {line}", file=sys.stderr, flush=True)
        results: dict[str, dict | str] = {}
        for service in spec.services:
            path = manifests / f"{service.service}.yaml"
            if path.exists():
                results[service.service] = yaml.safe_load(path.read_text(encoding="utf-8"))
            else:
                said = [line for line in lines if line.startswith(service.service)]
                results[service.service] = (
                    said[-1].partition(": ")[2] if said else f"push exited {done.returncode}"
                )
        return results
