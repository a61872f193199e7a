"""A binary of the kit's Java client: the kit's own (//java/client) and each service's, which adds
its subcommands (//python/services/ping/java:client). One macro so that every client starts the
same JVM the same way."""

load("//bazel:defs.bzl", "jvm_binary")

def java_client_binary(name, main_class, deps, **kwargs):
    """A `jvm_binary` running `main_class`, which calls kit.client.Main.main.

    Args:
      name: the target's name.
      main_class: the class whose main runs the client.
      deps: its library; //java/client:client_lib comes through it.
      **kwargs: what else `jvm_binary` takes (visibility, tags).
    """
    jvm_binary(
        name = name,
        # A command line client lives a second or two: the JIT's first tier and one GC thread
        # start it with about a quarter less CPU than the server defaults (docs/testing.md).
        jvm_flags = [
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
        ],
        main_class = main_class,
        native_libs = ["@java_debs//:tcnative_libs"],
        deps = deps,
        **kwargs
    )
