"""The one naming rule of a service, from its Cloud Run name to every other name it has.

NAME, as given to new_service, is the Cloud Run service name, since Cloud Run's rule is the
strictest of all: lowercase letters, digits and hyphens, a letter first, no hyphen last, at
most 49 characters (fewer when an environment's service_name template adds to it: scaffold.py
checks those). Bazel names, Python modules and proto packages cannot hold a hyphen, so
everywhere else NAME is written with each hyphen as an underscore (`order-history` is the
package python/services/order_history, the target //deploy:order_history and the proto package
order_history.v1); cloud_run_service maps it back the same way (`_` to `-`). An underscore in
NAME is refused, so the two spellings never meet. Classes take the capitalized words:
OrderHistoryServicer, service OrderHistoryService.

The underscore spelling is also a top-level Python package (the generated order_history.v1
modules) and a Java package (com.example.order_history.v1), so a keyword of either language, or
the name of a module a service's binary imports (a standard module such as `json`, or one of
the runtime's packages such as `grpc`), is refused too: it would break the build, or shadow that
module at run time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import keyword
import re

MAX_LENGTH = 49
_CLOUD_RUN_NAME = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")
# The Java Language Specification's reserved keywords and literals that Python does not share.
# A string, not a list: it reads as the table of JLS section 3.9.
_JAVA_RESERVED = frozenset(
    """abstract boolean byte case catch char const default do double enum extends final float
    goto implements instanceof int interface long native new package private protected public
    short static strictfp super switch synchronized this throw throws transient void volatile
    true false null""".split()  # noqa: SIM905
)


class BadName(ValueError):
    """NAME cannot be a service's name; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class Names:
    """A service's names, all derived from its Cloud Run name."""

    cloud_run: str

    @property
    def bazel(self) -> str:
        """Bazel packages and targets, Python modules, the proto package and its directory."""
        return self.cloud_run.replace("-", "_")

    @property
    def camel(self) -> str:
        """The prefix of its classes and of its gRPC service."""
        return "".join(word.capitalize() for word in self.cloud_run.split("-"))


def parse(name: str) -> Names:
    """The names of the service NAME, or BadName when NAME cannot be one."""
    if not name:
        raise BadName("the name is empty")
    if len(name) > MAX_LENGTH:
        raise BadName(f"{name}: {len(name)} characters, Cloud Run allows at most {MAX_LENGTH}")
    if not _CLOUD_RUN_NAME.fullmatch(name):
        raise BadName(
            f"{name!r}: Cloud Run names are lowercase letters, digits and hyphens, a letter "
            "first, no hyphen last (write order_history as order-history)"
        )
    names = Names(name)
    if keyword.iskeyword(names.bazel) or names.bazel in _JAVA_RESERVED:
        raise BadName(f"{name}: a Python or Java keyword cannot name a package")
    if importlib.util.find_spec(names.bazel) is not None:
        raise BadName(
            f"{name}: its proto package {names.bazel}.v1 would shadow the Python module "
            f"{names.bazel} that services import"
        )
    return names
