"""stamp_requested(): a select that is True when Bazel runs with `--stamp`."""

def stamp_requested():
    """For a rule's `stamp` attribute: True under `--stamp`, else False."""
    return select({
        Label("//bazel/private:stamp_requested"): True,
        "//conditions:default": False,
    })
