"""host_jdk_repository: the build machine's JDK, for the kit's Java rules (jvm_*.bzl).

Bazel's own Java rules need java_tools (JavaBuilder, ijar, singlejar), which come from GitHub
and which Debian's packaged Bazel does not ship, so the kit compiles Java with the JDK's own
javac. This repository links the JDK that `JAVA_HOME` names, else the one whose `javac` is on
PATH (in ./bazelw's root: Debian's OpenJDK), and exports what actions and launchers need.
"""

def _jdk_home(rctx):
    java_home = rctx.os.environ.get("JAVA_HOME", "")
    if java_home:
        return rctx.path(java_home)
    javac = rctx.which("javac")
    if javac == None:
        fail("no JDK: set JAVA_HOME or put a JDK's javac on PATH (Debian: openjdk-21-jdk-headless)")
    return javac.realpath.dirname.dirname

def _host_jdk_repository_impl(rctx):
    home = _jdk_home(rctx)
    for tool in ("java", "javac"):
        if not home.get_child("bin").get_child(tool).exists:
            fail("{} has no bin/{}: not a JDK".format(home, tool))
    release = home.get_child("release")
    if not release.exists:
        fail("{} has no release file: not a JDK".format(home))

    # Another JDK there (an upgrade) fetches this again, and with it every Java action reruns.
    rctx.watch(release)
    for entry in ("bin", "conf", "lib", "release"):
        if home.get_child(entry).exists:
            rctx.symlink(home.get_child(entry), "jdk/" + entry)
    rctx.file("BUILD.bazel", """\
# The JDK at {home}.
package(default_visibility = ["//visibility:public"])

filegroup(
    name = "jdk",
    srcs = glob(["jdk/**"]),
)

exports_files([
    "jdk/bin/java",
    "jdk/bin/javac",
    "jdk/release",
])
""".format(home = home))

host_jdk_repository = repository_rule(
    implementation = _host_jdk_repository_impl,
    environ = ["JAVA_HOME", "PATH"],
    local = True,
    doc = "The build machine's JDK (JAVA_HOME, else javac on PATH): `:jdk` (every file), " +
          "`jdk/bin/java`, `jdk/bin/javac`, `jdk/release`.",
)
