"""This repository's Cloud Run services: what they share, written once.

deploy/BUILD.bazel declares every service, and the push of them all, in one `services` call
where a service's entry is one line, its Bazel name and its binary:

    services(
        name = "push",
        ping = "//python/services/ping:server",
    )

A service that needs more (`env`, `min_scale`, `service`, ...; cloud_run_service's arguments
in //bazel:defs.bzl) gives a dict with its `binary` instead. See docs/services.md.
"""

load("//bazel:defs.bzl", "cloud_run_push", "cloud_run_release", "cloud_run_service")

# The layer under each service's own (built once, pushed once to a registry for them all).
BASE_LAYERS = ["//deploy:base_layer"]

# The lock installed for the image: each service's packages layer takes what its binary imports.
PACKAGES = "@pypi_image//:packages"

# Where the services go unless an environment file (deploy/environments/*.json) says otherwise.
PROJECT = "my-project"

REGION = "europe-west1"

REPOSITORY = "services"

# Set by `bazel run --stamp //deploy:push` besides `latest`, from tools/workspace_status.sh.
STAMPED_TAGS = [
    "{STABLE_RELEASE}",
    "git-{STABLE_GIT_COMMIT}",
]

def service(name, binary, **kwargs):
    """A Cloud Run service with this repository's defaults, e.g. for a test-only service.

    Args:
      name: Bazel name; its Cloud Run name is `name` with `_` replaced by `-`.
      binary: the service's py_binary.
      **kwargs: further cloud_run_service arguments, over the defaults here.
    """
    cloud_run_service(**({
        "name": name,
        "binary": binary,
        "base_layers": BASE_LAYERS,
        "packages": PACKAGES,
        "environments": ["//deploy:environments"],
        "project": PROJECT,
        "region": REGION,
        "repository": REPOSITORY,
        "stamped_tags": STAMPED_TAGS,
        "visibility": ["//tests:__subpackages__"],
    } | kwargs))

def services(name, **entries):
    """Every service of the repository, `name`: the push of them all, and their release.

    The push lists exactly the services given here: a service is pushed by being declared.
    So do `release` and `rollback` (cloud_run_release): `bazel run //deploy:release --
    --environment=staging [--service ping]` pushes, makes each new revision at 0% under the tag
    `candidate`, smoke-tests it and moves traffic 10,50,100; `bazel run //deploy:rollback --
    --environment=staging --service=ping` (docs/release.md).
    It also checks, at build time, that every `services` key of the environment files names
    one of them (cloud_run_push's `check_environments`).

    Args:
      name: the push-all target, `bazel run //deploy:push`.
      **entries: one per service, by Bazel name: its py_binary's label, or a dict of
        cloud_run_service arguments with `binary`.
    """
    for service_name, entry in entries.items():
        settings = entry if type(entry) == "dict" else {"binary": entry}
        service(name = service_name, **settings)
    cloud_run_push(
        name = name,
        check_environments = True,
        services = [":" + service_name for service_name in entries],
        visibility = ["//tests:__subpackages__"],
    )
    cloud_run_release(
        name = "release",
        rollback_name = "rollback",
        services = [":" + service_name for service_name in entries],
        visibility = ["//tests:__subpackages__"],
    )
