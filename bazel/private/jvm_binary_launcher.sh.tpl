#!/usr/bin/env bash
# Runs %{main_class} on the JDK the kit builds with. Written by jvm_binary (bazel/private).
set -euo pipefail
self=${BASH_SOURCE[0]}
# Its own runfiles when run directly or by `bazel run`; a test's, when a test runs it.
if [[ -d $self.runfiles ]]; then
  runfiles=$self.runfiles
elif [[ -n ${RUNFILES_DIR:-} ]]; then
  runfiles=$RUNFILES_DIR
else
  echo "$self: cannot find its runfiles" >&2
  exit 2
fi
classpath=""
for jar in %{classpath}; do
  classpath+="${classpath:+:}$runfiles/$jar"
done
native=""
for directory in %{native_dirs}; do
  native+="${native:+:}$runfiles/$directory"
done
if [[ -n $native ]]; then
  export LD_LIBRARY_PATH="$native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
exec "$runfiles/%{java}" %{jvm_flags} ${native:+"-Djava.library.path=$native"} \
  -cp "$classpath" %{main_class} "$@"
