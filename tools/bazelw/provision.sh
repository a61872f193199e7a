#!/usr/bin/env bash
# Builds the root filesystem in which ./bazelw runs Bazel when the machine has no usable Bazel.
#
# Debian sid packages Bazel 7.7.1 and the rule sets this project depends on, wired for offline
# bzlmod (/etc/bazel/bazelrc maps each module to /usr/share/bazel with --override_module). Sid's
# Bazel needs a newer glibc than Debian 12 has, hence a whole sid root made with mmdebstrap.
# The launcher keys the root on this file's hash: edit the package list or the offline settings
# here and the next ./bazelw run builds a new root.
#
# Usage: provision.sh DIR   (DIR must not exist; the caller renames it into place when we succeed)
set -euo pipefail

readonly PACKAGES=(
  # Bazel and the rule sets MODULE.bazel names (and what they name in turn).
  bazel-bootstrap bazel-rules-python bazel-rules-proto bazel-rules-cc bazel-rules-java
  bazel-platforms bazel-skylib bazel-features bazel-rules-license bazel-rules-shell
  # The interpreter the autodetecting Python toolchain and the @pypi extension use.
  python3 python3-pip
  # The well-known .proto files (google/protobuf/*.proto) for the offline protobuf module.
  libprotobuf-dev
  ca-certificates git
  # Real peers for the tests and benchmarks: a registry server to push to, an HTTP/2 load
  # generator, htpasswd for registry auth, and independent OCI tools to check images with.
  docker-registry nghttp2-client apache2-utils skopeo umoci
  # A real OCI runtime to run the images with (their cold start, in tests and the benchmark).
  runc
  # //tools/remote:local, the local remote cache and execution service: buildbox's casd, worker
  # and runner, and PostgreSQL for BuildGrid's scheduler (it runs no SQLite scheduler).
  buildbox postgresql
  # Signs a test Debian archive for the lock tool's tests (gpgv checks the real one's InRelease).
  gnupg gpgv
)

# Modules that the packaged rule sets name but Debian does not package; a Python build needs
# none of their code, only that module resolution finishes. protobuf also carries the
# well-known-type proto_library targets under the labels the real module uses.
readonly STUB_MODULES=(protobuf zlib apple_support buildozer)
# Each well-known type with the ones it imports, as in the real module.
declare -rA WELL_KNOWN_TYPES=(
  [any]="" [api]="source_context type" [descriptor]="" [duration]="" [empty]=""
  [field_mask]="" [source_context]="" [struct]="" [timestamp]="" [type]="any source_context"
  [wrappers]=""
)

root=${1:?usage: provision.sh DIR}
[[ ! -e $root ]] || { echo "provision.sh: $root already exists" >&2; exit 2; }

if ! command -v mmdebstrap >/dev/null; then
  echo "bazelw: installing mmdebstrap from the host's Debian archive" >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap >&2
fi

# The host may reach the package registries through a TLS-intercepting proxy whose CA lives in
# the host's local certificate folder; pip and Bazel's downloader inside the root must trust it too.
local_ca_dir=/usr/local/share/ca-certificates

echo "bazelw: building a Debian sid root with Bazel in $root (about a minute, once)" >&2
packages=$(IFS=,; echo "${PACKAGES[*]}")
mmdebstrap --variant=apt --mode=root \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --include="$packages" \
  --customize-hook="if [ -d $local_ca_dir ]; then cp -a $local_ca_dir/. \"\$1$local_ca_dir/\"; fi" \
  --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
  sid "$root" >&2

modules=/usr/share/bazelw/modules
for name in "${STUB_MODULES[@]}"; do
  mkdir -p "$root$modules/$name"
  printf 'module(name = "%s")\n' "$name" >"$root$modules/$name/MODULE.bazel"
  : >"$root$modules/$name/BUILD.bazel"
  echo "common --override_module=$name=$modules/$name" >>"$root/etc/bazel/bazelrc"
done

# Same labels and import paths as the real protobuf module: @protobuf//:timestamp_proto, with
# "google/protobuf/timestamp.proto" as the import path.
mkdir -p "$root$modules/protobuf/src/google/protobuf"
for wkt in "${!WELL_KNOWN_TYPES[@]}"; do
  cp "$root/usr/include/google/protobuf/$wkt.proto" "$root$modules/protobuf/src/google/protobuf/"
  deps=""
  for dep in ${WELL_KNOWN_TYPES[$wkt]}; do deps+="\":${dep}_proto\", "; done
  cat >>"$root$modules/protobuf/BUILD.bazel" <<BUILD
proto_library(
    name = "${wkt}_proto",
    srcs = ["src/google/protobuf/${wkt}.proto"],
    strip_import_prefix = "/src",
    visibility = ["//visibility:public"],
    deps = [${deps}],
)
BUILD
done
# //tools/remote:local, started as root, runs BuildGrid and PostgreSQL as buildgrid, and casd,
# the workers and their actions as buildbox: no part of it keeps root.
for user in buildgrid buildbox; do
  chroot "$root" useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$user"
done

# Debian's bazelrc keeps every sandbox for debugging, which fills the disk over many test runs.
echo "build --nosandbox_debug" >>"$root/etc/bazel/bazelrc"
# It also sets --host_javabase, a no-op in Bazel 7 that costs every command two deprecation
# warnings: commands stay quiet but for warnings about the user's own flags.
sed -i '/^build --host_javabase=/d' "$root/etc/bazel/bazelrc"
echo "bazelw: root ready" >&2
