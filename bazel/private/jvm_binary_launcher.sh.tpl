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
# Java decodes its arguments by the locale: in a C/POSIX one, `héllo` would become `h??llo`.
locale=${LC_ALL:-${LC_CTYPE:-${LANG:-}}}
if [[ ${locale,,} != *utf-8* && ${locale,,} != *utf8* ]]; then
  export LC_ALL=C.UTF-8
fi
# Libraries' use of sun.misc.Unsafe (JDK 23+) and of native code (JDK 22+) would print
# warnings about the libraries on the program's stderr: allowed, quietly, where the JDK has
# the switch.
quiet=(--enable-native-access=ALL-UNNAMED)
if [[ $(<"$runfiles/%{release}") =~ JAVA_VERSION=\"([0-9]+) ]] && ((BASH_REMATCH[1] >= 23)); then
  quiet+=(--sun-misc-unsafe-memory-access=allow)
fi
exec "$runfiles/%{java}" "${quiet[@]}" %{jvm_flags} ${native:+"-Djava.library.path=$native"} \
  -cp "$classpath" %{main_class} "$@"
