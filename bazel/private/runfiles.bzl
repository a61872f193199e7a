"""What the kit's launchers (push, jvm_binary) need to name files in their runfiles."""

def runfiles_path(file):
    """Where `file` is under a runfiles tree, e.g. `_main/java/client/libclient_lib.jar`.

    Args:
      file: File in the runfiles.

    Returns:
      String: its path relative to the runfiles directory (the main repository is `_main`).
    """
    path = file.short_path
    return path[len("../"):] if path.startswith("../") else "_main/" + path

def shell_words(words):
    """Returns `words` single-quoted for bash, separated by spaces.

    Args:
      words: list of strings.

    Returns:
      String: each word quoted so that bash reads it back unchanged.
    """
    return " ".join(["'{}'".format(word.replace("'", "'\\''")) for word in words])
