"""Releases Cloud Run services, or rolls one back, through the Cloud Run Admin API v1:

    bazel run //deploy:release -- --environment=ENV [--service NAME ...]
    bazel run //deploy:rollback -- --environment=ENV --service=NAME

A release pushes the images (the push tool, as `//deploy:push`), then for each service in turn:
creates its new revision with no traffic under the tag `candidate`, waits for it to be Ready,
smoke-tests it at the tag's URL, and shifts traffic to it in steps, each checked; a step that
fails puts the traffic back. A service whose built revision already takes all the traffic is a
no-op. rollout.py holds the steps, this file the command line and the exit status: 0 when every
service ended released, no-op or validated (or rolled back, for the rollback command), 1 when
any failed or the credentials are missing, 2 on bad input (nothing sent).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bazel.tools.release import checks, report, traffic
from bazel.tools.release.api import Api, ApiError
from bazel.tools.release.credentials import AccessToken, CredentialsError, id_token_call_credentials
from bazel.tools.release.pushing import push
from bazel.tools.release.report import Outcome
from bazel.tools.release.rollout import Failed, Rollout, Settings, roll_back_service
from bazel.tools.release.spec import UsageError, read_spec
from bazel.tools.release.waiting import NotReady, Waiter


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, required=True, help="written by cloud_run_release")
    parser.add_argument("--rollback", action="store_true", help="roll --service back instead")
    parser.add_argument("--environment", required=True, help="an environment file's name")
    parser.add_argument(
        "--service", action="append", default=[], help="only this service (repeatable)"
    )
    parser.add_argument("--dry_run", action="store_true", help="only the API's validation")
    parser.add_argument(
        "--traffic_steps", default="10,50,100", help="percents to the new revision, in order"
    )
    parser.add_argument(
        "--step_wait", type=float, default=60, help="seconds between a step and its check"
    )
    parser.add_argument(
        "--ready_timeout", type=float, default=600, help="seconds a revision may take to be Ready"
    )
    parser.add_argument(
        "--smoke_timeout", type=float, default=30, help="seconds each smoke call may take"
    )
    parser.add_argument(
        "--poll_interval", type=float, default=2, help="seconds between reads while waiting"
    )
    parser.add_argument(
        "--api_deadline", type=float, default=300, help="seconds of retries per API call"
    )
    parser.add_argument(
        "--api_endpoint",
        help="the Admin API's origin (default https://REGION-run.googleapis.com)",
    )
    parser.add_argument("--repository", help="push to PREFIX/NAME (as //deploy:push)")
    parser.add_argument(
        "--push_flag",
        action="append",
        default=[],
        help="another flag for the push tool, e.g. --push_flag=--plain_http (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="a JSON report on stdout")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    try:
        steps = traffic.parse_steps(args.traffic_steps)
        spec = read_spec(args.spec.resolve(), args.environment, args.service)
        if args.rollback and len(spec.services) != 1:
            raise UsageError("rollback: name exactly one --service")
    except (UsageError, ValueError) as error:
        print(f"release: {error}", file=sys.stderr)
        return 2
    os.chdir(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    outcomes = [Outcome(s.service, s.name, s.project, s.region) for s in spec.services]
    try:
        token = AccessToken()
    except CredentialsError as error:
        return _stopped(args, outcomes, error)
    manifests: dict[str, dict | str] = {}
    if not args.rollback:
        if args.dry_run:
            manifests = {s.service: s.manifest for s in spec.services}
        else:
            manifests = push(spec, args.repository, args.push_flag)
            for outcome in outcomes:
                if isinstance(pushed := manifests[outcome.service], dict):
                    image = pushed["spec"]["template"]["spec"]["containers"][0]["image"]
                    outcome.step("push", f"pushed {image}")
    settings = Settings(args.dry_run, steps, args.step_wait, args.smoke_timeout)
    for service, outcome in zip(spec.services, outcomes, strict=True):
        api = Api(
            args.api_endpoint or f"https://{service.region}-run.googleapis.com",
            service.project,
            token.header,
            args.api_deadline,
            log=lambda line, o=outcome: report.progress(f"{o.label}: {line}"),
        )
        waiter = Waiter(api, args.ready_timeout, args.poll_interval)
        try:
            if args.rollback:
                roll_back_service(api, waiter, outcome)
                continue
            manifest = manifests[service.service]
            if isinstance(manifest, str):
                raise Failed(f"push failed: {manifest}")
            outcome.resume()
            declared = checks.from_spec(service.smoke_checks)
            Rollout(
                api, waiter, settings, id_token_call_credentials, outcome, manifest, declared
            ).run()
        except CredentialsError as error:
            return _stopped(args, outcomes, error)
        except (Failed, ApiError, NotReady) as error:
            if outcome.result != report.ROLLED_BACK:
                outcome.result = report.FAILED
            outcome.error = outcome.error or str(error)
            report.progress(f"{outcome.label}: FAILED: {outcome.error}")
    good = {report.RELEASED, report.NO_OP, report.VALIDATED}
    if args.rollback:
        good.add(report.ROLLED_BACK)
    ok = all(o.result in good for o in outcomes)
    _summary(args, outcomes, ok)
    return 0 if ok else 1


def _summary(args: argparse.Namespace, outcomes: list[Outcome], ok: bool) -> None:
    if args.json:
        sys.stdout.write(report.document(args.environment, outcomes, ok))
    else:
        sys.stdout.write(report.table(outcomes))


def _stopped(args: argparse.Namespace, outcomes: list[Outcome], error: CredentialsError) -> int:
    """Credentials failed: nothing more is sent. One line says why, and the summary (or the
    pipeline's JSON) still comes, every service not yet done marked failed with that reason."""
    print(f"release: {error}", file=sys.stderr)
    for outcome in outcomes:
        if outcome.result == report.FAILED and outcome.error is None:
            outcome.error = f"not released: {error}"
    _summary(args, outcomes, False)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
