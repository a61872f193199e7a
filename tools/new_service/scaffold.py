"""What new_service writes for a service: every file rendered in memory, after every check.

The files come from templates, files of their own in templates/ rather than strings in this
code: a template reads as the file it makes (and diffs as one when the kit's services change
shape), and a person can change what new services start as without reading Python. Each is a
`string.Template`, with `${bazel}`, `${cloud_run}`, `${camel}` and `${go_package}` (see
names.py); `$$` is a literal `$`.

Nothing is written here: a name that is taken is refused before any file is rendered, and the
caller writes them all or none (files.py).
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

from bazel.tools.manifest_settings import SERVICE_NAME_KEY, SERVICE_PLACEHOLDER
from tools.new_service.files import File
from tools.new_service.names import MAX_LENGTH, BadName, Names

TEMPLATES = Path(__file__).parent / "templates"
DEPLOY_BUILD = Path("deploy/BUILD.bazel")
ENVIRONMENTS = Path("deploy/environments")

# The targets that cloud_run_service declares besides NAME (bazel/private/cloud_run_service.bzl):
# a new service's must not be another's.
MACRO_SUFFIXES = (
    "_app_layer",
    "_image",
    "_image_test",
    "_manifest",
    "_packages_layer",
    "_push",
    "_sbom",
    "_tarball",
)

# What the services call declares besides the services and its `name` (deploy/services.bzl).
SERVICES_CALL_DECLARES = ("release", "rollback")

_DECLARED_NAME = re.compile(r'^\s*name\s*=\s*"([^"]+)"', re.MULTILINE)
# The call that declares every service (deploy/services.bzl), one keyword argument each.
_SERVICES_CALL = re.compile(r"^services\(\n(?P<entries>(?:[ #].*\n|\n)*)\)", re.MULTILINE)
_ENTRY = re.compile(r"^    (\w+) = ", re.MULTILINE)


class Taken(Exception):
    """The service, or one of its files or targets, exists already; the message says where."""


class LayoutError(Exception):
    """The workspace is not laid out as new_service expects; the message says what is off."""


def plan(workspace: Path, names: Names) -> list[File]:
    """The files to write for a new service `names`, or Taken, or BadName when an environment's
    name for it would be too long."""
    check_length(workspace, names)
    check_unused(workspace, names)
    return [*new_files(names), deploy_entry(workspace, names)]


def check_unused(workspace: Path, names: Names) -> None:
    for directory in (Path("proto") / names.bazel, Path("python/services") / names.bazel):
        if (workspace / directory).exists():
            raise Taken(f"{names.cloud_run}: {directory} exists")
    build = _read(workspace, DEPLOY_BUILD)
    declared = (
        set(_DECLARED_NAME.findall(build))
        | set(_ENTRY.findall(_entries(build).group("entries")))
        | set(SERVICES_CALL_DECLARES)
    )
    taken = declared | {name + suffix for name in declared for suffix in MACRO_SUFFIXES}
    for target in [names.bazel, *(names.bazel + suffix for suffix in MACRO_SUFFIXES)]:
        if target in taken:
            raise Taken(f"{names.cloud_run}: {DEPLOY_BUILD} declares {target} already")
    for environment in _environment_files(workspace):
        for other, settings in _environment_services(workspace, environment).items():
            if other == names.cloud_run:
                raise Taken(f"{names.cloud_run}: {environment} has its settings already")
            if settings.get("service") == names.cloud_run:
                raise Taken(f"{names.cloud_run}: {environment} gives {other} that Cloud Run name")


def max_length(workspace: Path) -> tuple[int, Path | None]:
    """The longest NAME that every environment can deploy, and the environment file whose
    `service_name` template sets it (None when no template adds to the name).

    Cloud Run's limit applies to the name each environment deploys, not to NAME: under
    "{service}-staging" a 49-character NAME would be a 57-character service, which the
    build refuses only when that environment's manifest is built.
    """
    longest, limiting = MAX_LENGTH, None
    for path in _environment_files(workspace):
        template = _environment(workspace, path).get(SERVICE_NAME_KEY, SERVICE_PLACEHOLDER)
        if not isinstance(template, str):
            raise LayoutError(f'{path}: "{SERVICE_NAME_KEY}" is not a string')
        fits = MAX_LENGTH - (len(template) - len(SERVICE_PLACEHOLDER))
        if fits < longest:
            longest, limiting = fits, path
    return longest, limiting


def check_length(workspace: Path, names: Names) -> None:
    longest, limiting = max_length(workspace)
    if limiting is not None and len(names.cloud_run) > longest:
        template = _environment(workspace, limiting)[SERVICE_NAME_KEY]
        raise BadName(
            f"{names.cloud_run}: {len(names.cloud_run)} characters, {limiting} names services "
            f'"{template}", so Cloud Run allows at most {longest}'
        )


def _environment_files(workspace: Path) -> list[Path]:
    return [
        path.relative_to(workspace) for path in sorted((workspace / ENVIRONMENTS).glob("*.json"))
    ]


def _read(workspace: Path, path: Path) -> str:
    try:
        return (workspace / path).read_text()
    except OSError as error:
        raise LayoutError(f"cannot read {path}: {error.strerror}") from None


def _environment(workspace: Path, path: Path) -> dict:
    """An environment file's settings (their checks are the build's)."""
    try:
        settings = json.loads(_read(workspace, path))
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise LayoutError(f"{path}: not a JSON object of settings")
    return settings


def _environment_services(workspace: Path, path: Path) -> dict[str, dict]:
    """The "services" entries of an environment file."""
    services = _environment(workspace, path).get("services", {})
    if not isinstance(services, dict) or not all(isinstance(s, dict) for s in services.values()):
        raise LayoutError(f'{path}: "services" is not an object of objects')
    return services


def render(template: str, names: Names) -> str:
    return string.Template((TEMPLATES / template).read_text()).substitute(
        bazel=names.bazel,
        cloud_run=names.cloud_run,
        camel=names.camel,
        go_package=names.bazel.replace("_", "") + "v1",
    )


def new_files(names: Names) -> list[File]:
    proto = Path("proto") / names.bazel / "v1"
    python = Path("python/services") / names.bazel
    return [
        File(proto / f"{names.bazel}.proto", render("service.proto.tmpl", names)),
        File(proto / "BUILD.bazel", render("proto_BUILD.tmpl", names)),
        File(python / "BUILD.bazel", render("service_BUILD.tmpl", names)),
        File(python / "main.py", render("main.py.tmpl", names)),
        File(python / "servicer.py", render("servicer.py.tmpl", names)),
        File(python / "servicer_test.py", render("servicer_test.py.tmpl", names)),
    ]


def deploy_entry(workspace: Path, names: Names) -> File:
    """deploy/BUILD.bazel with the service's entry in its `services` call, in the order of the
    Bazel names, as buildifier sorts them."""
    build = _read(workspace, DEPLOY_BUILD)
    call = _entries(build)
    at = call.end("entries")
    for entry in _ENTRY.finditer(build, call.start("entries"), call.end("entries")):
        if entry[1] != "name" and entry[1] > names.bazel:
            at = _comment_start(build, entry.start())
            break
    return File(DEPLOY_BUILD, build[:at] + render("deploy_entry.tmpl", names) + build[at:])


def _comment_start(text: str, offset: int) -> int:
    """Where the comment lines right above `offset` (a line's start) begin: an entry's comment
    goes with it."""
    lines = text[:offset].splitlines(keepends=True)
    while lines and lines[-1].lstrip().startswith("#"):
        offset -= len(lines.pop())
    return offset


def _entries(build: str) -> re.Match[str]:
    """The `services` call of deploy/BUILD.bazel, its entries as the group `entries`."""
    call = _SERVICES_CALL.search(build)
    if call is None:
        raise LayoutError(f"{DEPLOY_BUILD}: no services( call to add the service to")
    return call
