"""Public rules of the kit. Load from here; the implementations live in private/.

A Cloud Run service is one `cloud_run_service` call (image, manifest, push targets) and a
repository's services are pushed together by one `cloud_run_push`:

    load("//bazel:defs.bzl", "cloud_run_push", "cloud_run_service")

    cloud_run_service(
        name = "ping",
        binary = "//python/services/ping:server",
        base_layers = [":base_layer"],
        packages = "@pypi_image//:packages",
        project = "my-project",
        region = "europe-west1",
        repository = "services",
    )

    cloud_run_push(name = "push", services = [":ping"])

A repository writes those defaults once in a macro of its own (this one's: deploy/services.bzl,
docs/services.md), so that a service's entry is its name and binary.
"""

load("//bazel/private:cloud_run_manifest.bzl", _cloud_run_manifest = "cloud_run_manifest")
load("//bazel/private:cloud_run_push.bzl", "cloud_run_push_rule")
load("//bazel/private:cloud_run_release.bzl", "cloud_run_release_rule")
load("//bazel/private:cloud_run_service.bzl", _cloud_run_service = "cloud_run_service")
load("//bazel/private:cloud_run_service_info.bzl", _CloudRunServiceInfo = "CloudRunServiceInfo")
load("//bazel/private:deb_layer.bzl", _deb_layer = "deb_layer")
load("//bazel/private:deploy_environment.bzl", _deploy_environment = "deploy_environment")
load("//bazel/private:files_layer.bzl", _files_layer = "files_layer")
load("//bazel/private:java_grpc_library.bzl", _java_grpc_library = "java_grpc_library")
load("//bazel/private:java_proto_library.bzl", _java_proto_library = "java_proto_library")
load("//bazel/private:jvm_binary.bzl", _jvm_binary = "jvm_binary")
load("//bazel/private:jvm_import.bzl", _jvm_import = "jvm_import")
load("//bazel/private:jvm_library.bzl", _jvm_library = "jvm_library")
load("//bazel/private:oci_image.bzl", "oci_image_rule")
load("//bazel/private:oci_image_info.bzl", _OciImageInfo = "OciImageInfo")
load("//bazel/private:oci_push.bzl", "oci_push_rule")
load("//bazel/private:oci_tarball.bzl", _oci_tarball = "oci_tarball")
load("//bazel/private:py_app_layer.bzl", _py_app_layer = "py_app_layer")
load("//bazel/private:py_grpc_library.bzl", _py_grpc_library = "py_grpc_library")
load("//bazel/private:py_packages_layer.bzl", _py_packages_layer = "py_packages_layer")
load("//bazel/private:py_proto_library.bzl", _py_proto_library = "py_proto_library")
load("//bazel/private:sbom.bzl", _oci_sbom = "oci_sbom")
load("//bazel/private:stamp.bzl", "stamp_requested")

OciImageInfo = _OciImageInfo
CloudRunServiceInfo = _CloudRunServiceInfo
py_proto_library = _py_proto_library
py_grpc_library = _py_grpc_library
deb_layer = _deb_layer
files_layer = _files_layer
py_app_layer = _py_app_layer
py_packages_layer = _py_packages_layer
cloud_run_manifest = _cloud_run_manifest
cloud_run_service = _cloud_run_service
deploy_environment = _deploy_environment
oci_tarball = _oci_tarball
oci_sbom = _oci_sbom
java_proto_library = _java_proto_library
java_grpc_library = _java_grpc_library
jvm_library = _jvm_library
jvm_import = _jvm_import
jvm_binary = _jvm_binary

def oci_image(name, **kwargs):
    """oci_image_rule (see its doc), stamped with the workspace status under `--stamp`."""
    oci_image_rule(name = name, stamp = stamp_requested(), **kwargs)

def oci_push(name, stamp = None, **kwargs):
    """oci_push_rule (see its doc), with stamped tags filled under `--stamp` unless `stamp` says."""
    oci_push_rule(
        name = name,
        stamp = stamp_requested() if stamp == None else stamp,
        **kwargs
    )

def cloud_run_push(name, stamp = None, **kwargs):
    """cloud_run_push_rule (see its doc), stamped tags filled under `--stamp` unless `stamp` says."""
    cloud_run_push_rule(
        name = name,
        stamp = stamp_requested() if stamp == None else stamp,
        **kwargs
    )

def cloud_run_release(name, rollback_name = None, stamp = None, **kwargs):
    """cloud_run_release_rule (see its doc) as `name`, and its rollback target.

    Args:
      name: the release target.
      rollback_name: the rollback target; default `name + "_rollback"`.
      stamp: fill stamped tags; default: when Bazel runs with `--stamp`.
      **kwargs: the rule's attributes (`services`, `repository`) and common ones.
    """
    common = {k: v for k, v in kwargs.items() if k in ("visibility", "tags", "testonly")}
    cloud_run_release_rule(
        name = name,
        stamp = stamp_requested() if stamp == None else stamp,
        **kwargs
    )
    cloud_run_release_rule(
        name = rollback_name or name + "_rollback",
        services = kwargs["services"],
        rollback = True,
        **common
    )
