"""build_host_test: the check that stops a build on a machine other than Linux x86_64.

The check runs in the module extensions, on the machine itself, so a test here can only feed its
function the `repository_os` values of other machines and compare the messages.
"""

load(":build_host.bzl", "unsupported_host")

def _build_host_test_impl(ctx):
    problems = []
    for machine, expected in ctx.attr.cases.items():
        os_name, _, arch = machine.partition("/")
        message = unsupported_host(os_name, arch)
        if message != expected:
            problems.append("{}: expected {}, got {}".format(machine, repr(expected), repr(message)))
    return [AnalysisTestResultInfo(
        success = not problems,
        message = "\n".join(problems) or "{} machines as expected".format(len(ctx.attr.cases)),
    )]

build_host_test = rule(
    implementation = _build_host_test_impl,
    doc = "Passes when `unsupported_host` gives each machine the expected message.",
    analysis_test = True,
    test = True,
    attrs = {
        "cases": attr.string_dict(
            mandatory = True,
            doc = "`os_name/arch` as repository_os reports them -> the expected message " +
                  "(\"\" for a machine that builds).",
        ),
    },
)
