"""Does nothing: same_python_test starts it to see which interpreters import what PYTHONPATH
holds while a `py_binary` starts (its stub runs on the machine's python3, then execs the
image's)."""
