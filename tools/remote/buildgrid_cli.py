"""BuildGrid's own `bgd` command line, as a binary that local.py runs (server, migrate)."""

from buildgrid.server.app import cli

if __name__ == "__main__":
    cli()
