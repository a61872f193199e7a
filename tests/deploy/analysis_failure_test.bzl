"""analysis_failure_test: passes when a target's analysis fails with the expected message.

For rules that must refuse a wrong input at analysis (a target without the provider they need):
the target under test is analysed with `--allow_analysis_failures`, so its failure becomes
data (AnalysisFailureInfo) instead of failing the build, and the test checks its message.
The same mechanism as bazel-skylib's `analysistest.make(expect_failure = True)`, without
depending on skylib.
"""

def _analysis_failure_test_impl(ctx):
    target = ctx.attr.target_under_test
    if type(target) == type([]):  # an attribute with a transition is a list of one
        target = target[0]
    if AnalysisFailureInfo not in target:
        return [AnalysisTestResultInfo(
            success = False,
            message = "{} was analysed without error; expected one containing {}".format(
                target.label,
                repr(ctx.attr.expected),
            ),
        )]
    messages = [cause.message for cause in target[AnalysisFailureInfo].causes.to_list()]
    found = [m for m in messages if ctx.attr.expected in m]
    return [AnalysisTestResultInfo(
        success = bool(found),
        message = "\n".join(found) if found else "{} failed analysis, but not with {}:\n{}".format(
            target.label,
            repr(ctx.attr.expected),
            "\n".join(messages),
        ),
    )]

analysis_failure_test = rule(
    implementation = _analysis_failure_test_impl,
    doc = "Passes when `target_under_test` fails analysis with a message containing `expected`.",
    analysis_test = True,
    test = True,
    attrs = {
        "target_under_test": attr.label(
            mandatory = True,
            cfg = analysis_test_transition(
                settings = {"//command_line_option:allow_analysis_failures": "True"},
            ),
            doc = "A target (tagged `manual`) whose analysis must fail.",
        ),
        "expected": attr.string(mandatory = True, doc = "Text the failure message contains."),
    },
)
