"""BuildGrid's own `bgd` command line, as a binary that local.py runs (server, migrate).

With one change: every `!disk-storage` of the configuration is wrapped in CheckedDigestStorage,
so no digest reaches the disk storage unless it is lowercase hex (checked_digests.py says why).
Re-registering the tag keeps the configuration valid for BuildGrid's schema.
"""

from buildgrid.server.app import cli
from buildgrid.server.app.settings import parser

from tools.remote.checked_digests import CheckedDigestStorage


@parser.object_tag("!disk-storage")
def load_checked_disk_storage(path: str) -> CheckedDigestStorage:
    return CheckedDigestStorage(parser.load_disk_storage(path))


if __name__ == "__main__":
    cli()
