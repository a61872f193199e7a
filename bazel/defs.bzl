"""Public rules of the kit. Load from here; the implementations live in private/."""

load("//bazel/private:py_grpc_library.bzl", _py_grpc_library = "py_grpc_library")
load("//bazel/private:py_proto_library.bzl", _py_proto_library = "py_proto_library")

py_proto_library = _py_proto_library
py_grpc_library = _py_grpc_library
