"""The settings of one Cloud Run service: the rule's attributes as JSON, with an environment file's
overrides layered on them, every value type-checked as strictly as Bazel checks the attributes.

Apart from cloud_run_manifest.py (the CLI and the rendering) so that what a setting *is* (its
name, type, where it may be set and how layers merge) reads in one place, separate from what
Cloud Run accepts of its value (manifest_rules.py) and from the YAML written from it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Settings:
    """One service's settings; field names are the cloud_run_manifest rule's attributes.

    No defaults here: the rule passes every attribute, and its attributes' defaults are the
    only ones.
    """

    service: str
    project: str
    region: str
    repository: str
    image_repository: str
    port: int
    service_account: str
    container_concurrency: int
    timeout_seconds: int
    cpu: str
    memory: str
    min_scale: int
    max_scale: int
    startup_cpu_boost: bool
    cpu_always_allocated: bool
    execution_environment: str
    ingress: str
    custom_audiences: tuple[str, ...]
    auth_mode: str
    allowed_invokers: tuple[str, ...]
    public: bool
    session_affinity: bool
    env: dict[str, str]
    secret_env: dict[str, str]
    secret_files: dict[str, str]
    vpc_network: str
    vpc_subnetwork: str
    vpc_egress: str
    service_annotations: dict[str, str]
    revision_annotations: dict[str, str]
    startup_probe_period_seconds: int
    startup_probe_failure_threshold: int
    liveness_probe_period_seconds: int
    liveness_probe_failure_threshold: int
    probe_timeout_seconds: int
    otel_collector_image: str
    otel_collector_config: str

    def image_name(self) -> str:
        """The repository the image is pushed to, without tag or digest."""
        if self.image_repository:
            return self.image_repository
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repository}/{self.service}"


class SettingsError(ValueError):
    """Settings Cloud Run would refuse, or of the wrong type; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# What each field's type accepts from JSON, in the words of the rule's attribute kinds.
_KINDS: dict[object, tuple[str, Callable[[object], bool]]] = {
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    tuple[str, ...]: (
        "a list of strings",
        lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    ),
    dict[str, str]: (
        "an object of strings",
        lambda v: isinstance(v, dict) and all(isinstance(item, str) for item in v.values()),
    ),
}
# In an environment file an object setting's key may be null: the key is removed.
_ENVIRONMENT_DICT_KIND = (
    "an object of strings (or null, to remove a key)",
    lambda v: (
        isinstance(v, dict) and all(item is None or isinstance(item, str) for item in v.values())
    ),
)
# Settings merged key by key (attribute < environment top level < services entry).
MERGED_SETTINGS = frozenset(
    name for name, kind in typing.get_type_hints(Settings).items() if kind == dict[str, str]
)
# Settings that are lists in JSON, tuples in Settings (which is frozen, so hashable).
LIST_SETTINGS = tuple(
    name for name, kind in typing.get_type_hints(Settings).items() if kind == tuple[str, ...]
)
SERVICES_KEY = "services"
# An environment file's name for every service at once: a template of the rule's `service`, so
# that a service added later gets its own name in this environment without a line of its own.
SERVICE_NAME_KEY = "service_name"
SERVICE_PLACEHOLDER = "{service}"
# Settings of one service only: at an environment file's top level they would apply to every
# service that shares the file. Value: what that would do, and what to do instead.
PER_SERVICE_SETTINGS = {
    "service": (
        "give every service that uses the file one name",
        f'name them all with "{SERVICE_NAME_KEY}": "{SERVICE_PLACEHOLDER}-staging", or rename one',
    ),
    "image_repository": (
        "send every service that uses the file to one image repository",
        "set it per service",
    ),
}
SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?")


def type_problems(
    values: dict, source: str, extra_known: tuple[str, ...] = (), environment: bool = True
) -> list[str]:
    """Keys of `values` that are not settings, and values not of their setting's type.

    `environment`: values from an environment file, whose object settings may hold nulls.
    """
    types = typing.get_type_hints(Settings)
    problems = []
    for key, value in values.items():
        if key in extra_known:
            continue
        if key not in types:
            known = ", ".join(sorted([*types, *extra_known]))
            problems.append(f"unknown setting {key!r} in the {source}; known: {known}")
            continue
        kind, accepts = _KINDS[types[key]]
        if environment and key in MERGED_SETTINGS:
            kind, accepts = _ENVIRONMENT_DICT_KIND
        if not accepts(value):
            problems.append(f"{key} in the {source} is {json.dumps(value)}: not {kind}")
    return problems


def environment_layers(environment: object, service: object) -> tuple[list[dict], list[str]]:
    """The environment's overrides for `service`, in the order they apply, and its problems: the
    top-level settings, then the name `service_name` makes of `service`, then the service's own
    entry in `services` (whose `service` wins over the template).

    Every services entry is checked, not only this service's: the file is shared, and a mistake
    in any entry should fail every build that reads it, not only that service's deploy.
    """
    if environment is None:
        return [], []
    if not isinstance(environment, dict):
        return [], ["the environment file is not a JSON object"]
    top = {k: v for k, v in environment.items() if k != SERVICES_KEY}
    problems = []
    example = service if isinstance(service, str) else "NAME"
    for key, (effect, instead) in PER_SERVICE_SETTINGS.items():
        if key in top:
            problems.append(
                f"the environment file sets {key} {json.dumps(top[key])} at the top level, "
                f"which would {effect}; {instead} with "
                f'"services": {{"{example}": {{"{key}": ...}}}}'
            )
            del top[key]
    template = top.pop(SERVICE_NAME_KEY, None)
    if template is not None:
        problems += _template_problems(template)
    problems += type_problems(top, "environment file", extra_known=(SERVICES_KEY, SERVICE_NAME_KEY))
    entries = environment.get(SERVICES_KEY, {})
    if not isinstance(entries, dict):
        problems.append(
            f"{SERVICES_KEY} in the environment file is {json.dumps(entries)}: not an object "
            "of service names to settings"
        )
        entries = {}
    for name, entry in entries.items():
        source = f"environment file's {SERVICES_KEY}.{name}"
        if SERVICE_NAME.fullmatch(name) is None:
            problems.append(
                f"{SERVICES_KEY} key {name!r} in the environment file is not a "
                "Cloud Run service name"
            )
        if not isinstance(entry, dict):
            problems.append(
                f"{SERVICES_KEY}.{name} in the environment file is "
                f"{json.dumps(entry)}: not an object of settings"
            )
            continue
        problems += type_problems(entry, source)
    layers = [top]
    if isinstance(template, str) and isinstance(service, str) and not problems:
        layers.append({"service": template.replace(SERVICE_PLACEHOLDER, service)})
    if isinstance(service, str) and isinstance(entries.get(service), dict):
        layers.append(entries[service])
    return layers, problems


def _template_problems(template: object) -> list[str]:
    """A service_name that is not a template of every service's own name."""
    if not isinstance(template, str):
        return [
            f"{SERVICE_NAME_KEY} in the environment file is {json.dumps(template)}: not a string"
        ]
    rest = template.replace(SERVICE_PLACEHOLDER, "")
    if SERVICE_PLACEHOLDER not in template or "{" in rest or "}" in rest:
        return [
            f"{SERVICE_NAME_KEY} {json.dumps(template)} in the environment file must hold "
            f'{SERVICE_PLACEHOLDER} (and no other braces), e.g. "{SERVICE_PLACEHOLDER}-staging": '
            "otherwise every service would get one name"
        ]
    return []


def merged_settings(settings: dict, environment: object = None) -> Settings:
    """Settings from the rule's attributes, with an environment's overrides applied.

    Types and keys are checked here; Cloud Run's rules are manifest_rules.settings_problems'.
    """
    layers, environment_problems = environment_layers(environment, settings.get("service"))
    problems = type_problems(settings, "attributes", environment=False) + environment_problems
    missing = sorted(set(typing.get_type_hints(Settings)) - set(settings))
    if missing:
        problems.append(f"the attributes lack {', '.join(missing)} (the rule passes every one)")
    if problems:
        raise SettingsError(problems)
    merged = dict(settings)
    for layer in layers:
        for key, value in layer.items():
            if key in MERGED_SETTINGS:
                value = {k: v for k, v in {**merged[key], **value}.items() if v is not None}
            merged[key] = value
    for name in LIST_SETTINGS:
        merged[name] = tuple(merged[name])
    return Settings(**merged)


def read_environment(path: Path) -> object:
    """An environment file's JSON; SettingsError when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SettingsError([f"the environment file is not JSON: {error}"]) from None


def service_key_problems(environment: object, services: list[str]) -> list[str]:
    """Problems of an environment file shared by `services` (their Cloud Run names).

    What a manifest build would find in it for any service, and `services` keys that name none
    of `services`: such an entry would apply to no service, silently.
    """
    _, problems = environment_layers(environment, None)
    if problems or not isinstance(environment, dict):
        return problems
    known = ", ".join(sorted(services))
    return [
        f"{SERVICES_KEY} key {name!r} is not the Cloud Run service name of any service that "
        f"uses this file, so its settings would apply to none; the services: {known}"
        for name in environment.get(SERVICES_KEY, {})
        if name not in services
    ]
