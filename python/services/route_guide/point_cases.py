"""Points as people type them, with what RouteGuide must receive, and bad points with the one
line the clients print. One table for route guide's Python client's tests and its Java client's
(java/), so both are held to the same rule (docs/client.md): a decimal point means
degrees, integers beyond +-180 mean degrees x 10^7, integers all within +-180 are refused (0,0
aside)."""

from __future__ import annotations

# What the client sends, in degrees x 10^7, for each way of writing a point.
GOOD = {
    # Every quadrant, in degrees and in E7; negative first numbers need no `--`.
    "33.8688,151.2093": (338688000, 1512093000),
    "40.7128,-74.006": (407128000, -740060000),
    "-33.4489,-70.6693": (-334489000, -706693000),
    "-33.8688,151.2093": (-338688000, 1512093000),
    "338688000,1512093000": (338688000, 1512093000),
    "407128000,-740060000": (407128000, -740060000),
    "-334489000,-706693000": (-334489000, -706693000),
    "-338688000,1512093000": (-338688000, 1512093000),
    # The corners exactly: +-90 latitude, +-180 longitude.
    "90.0,180.0": (900000000, 1800000000),
    "-90.0,-180.0": (-900000000, -1800000000),
    "90.0,-180.0": (900000000, -1800000000),
    "-90.0,180.0": (-900000000, 1800000000),
    "900000000,1800000000": (900000000, 1800000000),
    "-900000000,-1800000000": (-900000000, -1800000000),
    # The smallest steps, and seven decimals exactly.
    "-0.0000001,0.0000001": (-1, 1),
    "1.1234567,-1.1234567": (11234567, -11234567),
    # One decimal point makes both numbers degrees; a plus sign; spaces round the numbers.
    "-90,180.0": (-900000000, 1800000000),
    "+45.5,-0.5": (455000000, -5000000),
    " 40.7128 , -74.006 ": (407128000, -740060000),
    # Just past the ambiguous integers, E7 as the client always took them; 0,0 is the same
    # in both units.
    "181,-181": (181, -181),
    "0,0": (0, 0),
}

# The client's message for each bad point, after "argument point: ".
BAD = {
    "90.0000001,0": "'90.0000001,0': latitude 90.0000001 is outside -90..90 degrees",
    "-90.0000001,0": "'-90.0000001,0': latitude -90.0000001 is outside -90..90 degrees",
    "0,180.0000001": "'0,180.0000001': longitude 180.0000001 is outside -180..180 degrees",
    "0,-180.0000001": "'0,-180.0000001': longitude -180.0000001 is outside -180..180 degrees",
    "900000001,0": (
        "'900000001,0': latitude 900000001 is outside -900000000..900000000 degrees x 10^7"
    ),
    "-900000001,0": (
        "'-900000001,0': latitude -900000001 is outside -900000000..900000000 degrees x 10^7"
    ),
    "0,1800000001": (
        "'0,1800000001': longitude 1800000001 is outside -1800000000..1800000000 degrees x 10^7"
    ),
    "0,-1800000001": (
        "'0,-1800000001': longitude -1800000001 is outside -1800000000..1800000000 degrees x 10^7"
    ),
    "1.12345678,0": (
        "'1.12345678,0': 1.12345678 has more than 7 decimals (RouteGuide counts 10^-7 degrees)"
    ),
    "-1,-1": "'-1,-1' could be degrees or degrees x 10^7: for degrees write -1.0,-1.0",
    "40,-74": "'40,-74' could be degrees or degrees x 10^7: for degrees write 40.0,-74.0",
    "-180,180": "'-180,180' could be degrees or degrees x 10^7: for degrees write -180.0,180.0",
    **{
        garbage: "a point is LAT,LON in degrees (-33.8688,151.2093) or degrees x 10^7"
        f" (-338688000,1512093000), got {garbage!r}"
        for garbage in ("north", "", "-", "1,2,3", "1,", "-.5,3", "1e5,3", "nan,0", "1_000,0")
    },
}
