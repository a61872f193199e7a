#!/usr/bin/env bash
# Bazel's workspace status (used only with --stamp): the source revision and a release label
# that stamped outputs (image labels, pushed tags) carry. RELEASE in the environment names the
# release; otherwise `git describe` does.
set -euo pipefail
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
echo "STABLE_GIT_COMMIT $commit"
echo "STABLE_RELEASE ${RELEASE:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
