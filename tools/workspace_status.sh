#!/usr/bin/env bash
# Bazel's workspace status: the source revision and a release label that stamped outputs (image
# labels, pushed tags) carry. RELEASE in the environment names the release; otherwise
# `git describe` does.
#
# Bazel runs this for every build, stamped or not, so it never fails: outside a git checkout,
# or when git fails, it leaves the git keys out (and says why on stderr), and the stamped
# outputs that need them fail with a message naming the missing key, rather than label or tag
# an image `unknown`.
set -uo pipefail
if ! commit=$(git rev-parse --verify HEAD 2>&1); then
  echo "workspace_status: no STABLE_GIT_COMMIT: git rev-parse HEAD failed: ${commit##*$'\n'}" >&2
  [[ -n ${RELEASE:-} ]] && echo "STABLE_RELEASE $RELEASE"
  exit 0
fi
echo "STABLE_GIT_COMMIT $commit"
if [[ -n ${RELEASE:-} ]]; then
  echo "STABLE_RELEASE $RELEASE"
elif release=$(git describe --tags --always --dirty 2>&1); then
  echo "STABLE_RELEASE $release"
else
  echo "workspace_status: no STABLE_RELEASE: git describe failed: ${release##*$'\n'}" >&2
fi
