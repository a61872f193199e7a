"""protoc from the grpcio-tools wheel, as a Bazel tool.

Used as `--proto_compiler` (descriptor sets for every proto_library) and by the kit's
py_proto_library / py_grpc_library rules, so no C++ protobuf is ever compiled. The wheel's
protoc also carries gRPC's Python plugin, reached with `--grpc_python_out`.
"""

import sys

from grpc_tools import protoc

if __name__ == "__main__":
    # protoc.main takes argv including the program name, like protoc's own main.
    sys.exit(protoc.main(sys.argv))
