"""Pushes images Bazel built to a registry: `bazel run //deploy:push [-- --repository PREFIX]`.

Two modes, one per rule:
- `--spec FILE` (cloud_run_push): the Cloud Run services the spec lists, one after the other.
  Each goes to `PREFIX/NAME` with `--repository PREFIX`, NAME being the Cloud Run service name
  its manifest (built for the chosen environment) gives, so an environment that renames a
  service (`ping-staging`) never moves the tags of another environment's; else to the
  repository its manifest names. Once pushed, its manifest, resolved for that repository, is
  written to `--manifest_dir` (default: where `bazel run` was started) as `SERVICE.yaml` (the
  spec's name). A service that fails, for any reason, does not stop the others: nothing of it is
  tagged and its manifest is not written. Stdout ends with one line per service:
  `ping: pushed REPO@sha256:... tags latest`, `ping (ping-staging): pushed ...` when the
  environment renamed it, or `ping: FAILED: reason` (`FAILED: internal error: ...` with a
  traceback on stderr for an error nothing here foresaw). A service with an SBOM (the spec's
  `sbom`, from the macro's oci_sbom) gets it attached as an OCI artifact whose subject is the
  image (referrers.py), after the image and before any tag, so a tag never names an image
  whose SBOM is not there; its summary line ends `sbom sha256:...`. `--no_sbom` leaves it out.
- `--image DIR --repository HOST/NAME` (oci_push): one image, stdout `REPOSITORY@sha256:...`.

For each image, blobs the registry lacks are uploaded (or mounted from another repository of
the same registry that got them earlier in this run), then the manifest by digest, and only
then the tags, so a push that fails part way leaves every tag where it was, and a rerun
uploads only what is still missing. Tags go most specific first: stamped tags (release,
commit), then `--tag`s, then the rule's (`latest`, or under `--environment=NAME` the tag
NAME: cloud_run_push gives each environment its own), `latest` last; a tag the registry
refuses stops the tagging, and the failure says which tags moved and which did not. Progress
goes to stderr, one line per blob, prefixed with the service in --spec mode.

The registry is trusted with its own origin alone (credentials go nowhere else; origins.py),
every answer is read with a cap, and the whole push has a deadline, `--timeout`, as each
request has one (transport.py, deadline.py): a push out of time fails what is left, in one line
per image.

Exit 0 when everything was pushed, 1 when the registry or the network failed any image (or
the push ran out of time), 2 on bad input (found before anything is sent).

Planning (bazel/tools/push/plan.py) and pushing (bazel/tools/push/pushing.py) live in modules
of their own; this one is the command line and the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bazel.tools.push.layout import LayoutError
from bazel.tools.push.plan import UsageError, plan
from bazel.tools.push.pushing import log, push_image, push_services
from bazel.tools.push.transport import KIB, SLOWEST_UPLOAD


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line: the launcher's arguments (spec or image), then the user's."""
    parser = argparse.ArgumentParser(
        prog="push", description="Pushes images built by Bazel to a registry."
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--spec", type=Path, help="Cloud Run services to push (JSON written by cloud_run_push)"
    )
    what.add_argument("--image", type=Path, help="one image: its OCI layout directory")
    parser.add_argument(
        "--repository",
        help="with --spec: a repository prefix, host/path; each service goes to "
        "PREFIX/NAME, NAME the Cloud Run service name its manifest gives (default: the "
        "repository its manifest names). "
        "With --image: the whole repository, host/path/name",
    )
    parser.add_argument(
        "--tag", action="append", default=[], help="another tag to set (repeatable)"
    )
    parser.add_argument(
        "--stamped_tag",
        action="append",
        default=[],
        help="tag template such as {STABLE_RELEASE}, used when a --status_file is given",
    )
    parser.add_argument(
        "--status_file", action="append", default=[], help="Bazel workspace status (--stamp)"
    )
    parser.add_argument(
        "--manifest_dir",
        type=Path,
        default=Path("."),
        help="with --spec: where SERVICE.yaml files go (default: the directory bazel run "
        "was started from)",
    )
    parser.add_argument(
        "--no_mount",
        action="store_true",
        help="upload every missing blob, never mount one from another repository",
    )
    parser.add_argument(
        "--chunk_size_mib",
        type=float,
        default=16,
        help="blobs larger than this go in chunks of this size (default: 16)",
    )
    parser.add_argument(
        "--no_sbom",
        action="store_true",
        help="with --spec: push the images without attaching their SBOMs (for a registry "
        "that refuses OCI artifacts)",
    )
    parser.add_argument("--retries", type=int, default=5, help="attempts per request")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds the whole push may take, every image included (default: %(default)g); "
        "then it stops, and what is left fails",
    )
    parser.add_argument(
        "--request_timeout",
        type=float,
        default=60,
        help="seconds one request may take to be answered in full, plus 1 s per "
        f"{SLOWEST_UPLOAD // KIB} KiB it sends (default: %(default)g); a request that takes "
        "longer is retried as a broken one",
    )
    parser.add_argument(
        "--plain_http",
        action="store_true",
        help="HTTP instead of HTTPS (always so for loopback registries: localhost, "
        "127.0.0.0/8, [::1])",
    )
    parser.add_argument(
        "--google_registry",
        action="append",
        default=[],
        help="another host to treat as Google's (Application Default Credentials)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Plans (exit 2 on bad input, before anything is sent), then pushes."""
    args = parse_args(argv[1:])
    try:
        targets, notes = plan(args)
    except (UsageError, LayoutError) as error:
        print(f"push: {error}", file=sys.stderr)
        return 2
    for note in notes:
        log(note)
    if args.spec:
        return push_services(args, targets)
    return push_image(args, targets[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
