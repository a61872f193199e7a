"""BuildGrid's own `bgd` command line, as a binary that local.py runs (server, migrate).

With one change: every `!disk-storage` of the configuration is WholeBlobDiskStorage (its blobs
are whole before they appear, whole_blob_storage.py says why) behind CheckedDigestStorage, so
no digest reaches the disk unless it is lowercase hex (checked_digests.py says why).
Re-registering the tag keeps the configuration valid for BuildGrid's schema.
"""

from buildgrid.server.app import cli
from buildgrid.server.app.settings import parser

from tools.remote.checked_digests import CheckedDigestStorage
from tools.remote.whole_blob_storage import WholeBlobDiskStorage


@parser.object_tag("!disk-storage")
def load_checked_disk_storage(path: str) -> CheckedDigestStorage:
    return CheckedDigestStorage(WholeBlobDiskStorage(path))


if __name__ == "__main__":
    cli()
