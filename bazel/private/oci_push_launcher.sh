#!/usr/bin/env bash
# Launcher of an oci_push or cloud_run_push target: runs the push tool with the target's
# arguments (an image and tags, or the spec of its services), then the user's (later flags
# win). Paths are under the runfiles root.
set -euo pipefail
runfiles=${RUNFILES_DIR:-}
if [[ -z $runfiles ]]; then
  if [[ -d "$0.runfiles" ]]; then runfiles=$(cd "$0.runfiles" && pwd); else runfiles="$PWD/.."; fi
fi
# Relative paths the user gives (--manifest_dir), and the manifests written by default, mean
# the directory they ran us from.
export BUILD_WORKING_DIRECTORY=${BUILD_WORKING_DIRECTORY:-$PWD}
cd "$runfiles"
exec "$runfiles/%TOOL%" %ARGS% "$@"
