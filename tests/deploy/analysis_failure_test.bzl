"""Analysis tests of the kit's rules.

analysis_failure_test: passes when a target's analysis fails with the expected message.
validation_test: passes when a target has the validation actions expected.
push_tags_test, staging_push_tags_test: pass when a push tags each service as expected,
without an environment and under `--environment=staging`.

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

    # On success, only the lines holding the expected text: a failure's Starlark traceback names
    # the .bzl files by absolute path, which would make the test's result (its script) differ
    # per checkout and never come from a remote cache.
    found = [
        line
        for message in messages
        for line in message.split("\n")
        if ctx.attr.expected in line
    ]
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

def _validation_test_impl(ctx):
    target = ctx.attr.target_under_test
    validations = []
    if OutputGroupInfo in target and hasattr(target[OutputGroupInfo], "_validation"):
        validations = target[OutputGroupInfo]._validation.to_list()
    by_output = {}
    for action in target.actions:
        for output in action.outputs.to_list():
            by_output[output] = action

    # Bazel adds the validations of the target's dependencies (a push's manifests' own) to its
    # output group: only the target's own are its.
    validations = [f for f in validations if f in by_output]
    command_lines = [" ".join(by_output[f].argv) for f in validations]
    problems = []
    if len(validations) != len(ctx.attr.expected):
        problems.append("{} has {} validation actions, expected {}".format(
            target.label,
            len(validations),
            len(ctx.attr.expected),
        ))
    for expected in ctx.attr.expected:
        if not [line for line in command_lines if expected in line]:
            problems.append("no validation action's command line contains " + repr(expected))
    return [AnalysisTestResultInfo(
        success = not problems,
        message = "\n".join(problems + ["validation actions:"] + command_lines),
    )]

validation_test = rule(
    implementation = _validation_test_impl,
    doc = """Passes when `target_under_test` has one validation action of its own (output group
`_validation`, run whenever the target is built; its dependencies' are not counted) per entry
of `expected`, each entry a part of one action's command line.""",
    analysis_test = True,
    test = True,
    attrs = {
        "target_under_test": attr.label(mandatory = True, doc = "The target to inspect."),
        "expected": attr.string_list(
            doc = "Text of each validation action's command line; empty: none expected.",
        ),
    },
)

def _push_tags_test_impl(ctx):
    target = ctx.attr.target_under_test[0]  # an attribute with a transition is a list of one
    specs = [
        action.content
        for action in target.actions
        for output in action.outputs.to_list()
        if output.basename.endswith(".push.json")
    ]
    if len(specs) != 1:
        return [AnalysisTestResultInfo(
            success = False,
            message = "{} writes {} push specs, expected one".format(target.label, len(specs)),
        )]
    tags = {service["service"]: service["tags"] for service in json.decode(specs[0])["services"]}
    wrong = {service: got for service, got in tags.items() if got != ctx.attr.expected}
    return [AnalysisTestResultInfo(
        success = bool(tags) and not wrong,
        message = "tags by service: {}; expected {} for each".format(tags, ctx.attr.expected),
    )]

def _push_tags_test(environment):
    return rule(
        implementation = _push_tags_test_impl,
        doc = ("Passes when every service of a cloud_run_push, built with " +
               "`--environment={}`, is tagged exactly `expected`.").format(environment),
        analysis_test = True,
        test = True,
        attrs = {
            "target_under_test": attr.label(
                mandatory = True,
                cfg = analysis_test_transition(settings = {"//bazel:environment": environment}),
                doc = "A cloud_run_push target.",
            ),
            "expected": attr.string_list(mandatory = True, doc = "Each service's tags."),
        },
    )

# The moving tag of a push: the services' remote_tags without an environment, the environment's
# own name with one.
push_tags_test = _push_tags_test("")
staging_push_tags_test = _push_tags_test("staging")
