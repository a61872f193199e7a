"""Writes the RouteGuide feature database: `generate_features.py OUT.json`.

A build step rather than a checked-in file, so the data is reviewable as code and identical on
every build: a fixed seed, a fixed count, names from fixed word lists. Points fall in a box
around the Bay Area at a spacing that leaves most random points unnamed, like a real map.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile

SEED = 20261121
COUNT = 300
LATITUDE_RANGE = (37_000_0000, 38_000_0000)  # degrees x 10^7
LONGITUDE_RANGE = (-123_000_0000, -121_500_0000)
GRID = 100_000  # 0.01 degree: points sit on a grid so a client can find them again

FIRST = ["North", "South", "Old", "Upper", "Lower", "Little", "Grand", "Red", "Cedar", "Pine"]
SECOND = ["Ridge", "Creek", "Harbor", "Meadow", "Point", "Hollow", "Bluff", "Station", "Mill"]
KIND = ["Trailhead", "Lookout", "Bridge", "Landing", "Spring", "Camp", "Gate", "Tower"]


def features(seed: int = SEED, count: int = COUNT) -> list[dict]:
    rows = (LATITUDE_RANGE[1] - LATITUDE_RANGE[0]) // GRID
    columns = (LONGITUDE_RANGE[1] - LONGITUDE_RANGE[0]) // GRID
    if count > rows * columns // 2:
        raise ValueError(f"{count} features do not fit sparsely in {rows}x{columns} cells")
    rng = random.Random(seed)
    cells: dict[tuple[int, int], dict] = {}
    while len(cells) < count:
        lat = rng.randrange(LATITUDE_RANGE[0], LATITUDE_RANGE[1], GRID)
        lon = rng.randrange(LONGITUDE_RANGE[0], LONGITUDE_RANGE[1], GRID)
        name = f"{rng.choice(FIRST)} {rng.choice(SECOND)} {rng.choice(KIND)}"
        cells.setdefault((lat, lon), {"name": name, "latitude": lat, "longitude": lon})
    return sorted(cells.values(), key=lambda f: (f["latitude"], f["longitude"]))


def main(out: str) -> int:
    directory = os.path.dirname(out) or "."
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, encoding="utf-8") as tmp:
        json.dump(features(), tmp, indent=1, sort_keys=True)
        tmp.write("\n")
    os.replace(tmp.name, out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: generate_features.py OUT.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
