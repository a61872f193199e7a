"""Reads requirements lock files as pip-compile and `uv pip compile` write them.

Shared by the repository rule that installs a lock (it needs each pin's dependencies, which the
lock records as `# via` annotations) and by the test that keeps a lock true to its input.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)")
_MARKER = re.compile(r"\s*;\s*(?P<marker>.*?)\s*(?=--hash=|$)")
_HASH = re.compile(r"--hash=(\w+:[0-9a-fA-F]+)")
_VIA_INLINE = re.compile(r"^#\s+via\s+(\S.*)$")
_VIA_ITEM = re.compile(r"^#\s{2,}(\S.*)$")
REQUIREMENTS_IN = "-r"


@dataclasses.dataclass
class Pin:
    """One distribution pinned by a lock."""

    name: str
    version: str
    hashes: list[str]
    # Who asked for this distribution: other distributions' names, or "-r <file>" for the input.
    via: list[str] = dataclasses.field(default_factory=list)
    # The environment marker after `;`, e.g. `sys_platform == 'win32'`; empty: everywhere.
    marker: str = ""

    @property
    def label_name(self) -> str:
        return normalize(self.name)


def normalize(name: str) -> str:
    """A distribution name as rules_python's hub labels spell it: `google-auth` -> `google_auth`."""
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_lock(text: str) -> list[Pin]:
    pins: list[Pin] = []
    in_via_list = False
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if logical or (raw and not raw[0].isspace() and not raw.startswith("#")):
            logical += " " + line.rstrip("\\")
            if line.endswith("\\"):
                continue
            match = _PIN.match(logical.strip())
            if not match:
                raise ValueError(f"not a `name==version` pin: {logical.strip()!r}")
            marker = _MARKER.match(logical.strip(), match.end())
            pins.append(
                Pin(
                    match["name"],
                    match["version"],
                    _HASH.findall(logical),
                    marker=marker["marker"] if marker else "",
                )
            )
            logical = ""
            in_via_list = False
            continue
        if not pins or not line.startswith("#"):
            in_via_list = False
            continue
        if line == "# via":
            in_via_list = True
        elif inline := _VIA_INLINE.match(line):
            pins[-1].via.append(inline[1].strip())
        elif in_via_list and (item := _VIA_ITEM.match(line)):
            pins[-1].via.append(item[1].strip())
        else:
            in_via_list = False
    return pins


def read_lock(path: Path) -> list[Pin]:
    return parse_lock(path.read_text(encoding="utf-8"))


def read_requirements_in(path: Path) -> list[str]:
    """Names of the distributions a requirements.in asks for (versions and markers dropped)."""
    names = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise ValueError(f"{path}: options are not supported here: {line!r}")
        names.append(re.split(r"[\s\[<>=!~;@]", line, maxsplit=1)[0])
    return names


def dependencies(pins: list[Pin]) -> dict[str, list[str]]:
    """Each pin's direct dependencies (normalized names), inverted from the `# via` annotations."""
    locked = {pin.label_name for pin in pins}
    deps: dict[str, list[str]] = {pin.label_name: [] for pin in pins}
    for pin in pins:
        for dependent in pin.via:
            key = normalize(dependent)
            if key in locked:
                deps[key].append(pin.label_name)
    return {name: sorted(set(names)) for name, names in deps.items()}


def lock_problems(requested: list[str], pins: list[Pin]) -> list[str]:
    """Ways a lock disagrees with the input it was made from; empty when they agree."""
    problems = []
    locked = {pin.label_name: pin for pin in pins}
    for name in requested:
        pin = locked.get(normalize(name))
        if pin is None:
            problems.append(f"{name}: asked for but not pinned in the lock")
        elif not any(via.startswith(REQUIREMENTS_IN) for via in pin.via):
            problems.append(f"{name}: pinned, but the lock does not say the input asked for it")
    wanted = {normalize(name) for name in requested}
    for pin in pins:
        if not pin.hashes:
            problems.append(f"{pin.name}=={pin.version}: pinned without --hash")
        needed_by = [v for v in pin.via if normalize(v) in locked]
        if pin.label_name not in wanted and not needed_by:
            problems.append(f"{pin.name}=={pin.version}: in the lock, but nothing asks for it")
    return problems
