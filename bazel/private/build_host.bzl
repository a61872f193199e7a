"""Which build machines the kit runs on, checked before anything Linux-only is fetched.

The build's Python is Debian's CPython for x86_64 (run on its own loader, so any Linux x86_64
kernel runs it), protoc and the image tools run on it, and the wheels are Linux ones: on another
system or CPU the first action would die with an exec error far from the cause. The module
extensions call `require_linux_x86_64` first, so the build stops at once with one line that says
what works.
"""

# What repository_os reports: os.name lowercased, and the JVM's os.arch.
_LINUX = "linux"
_X86_64 = ["amd64", "x86_64"]

def unsupported_host(os_name, arch):
    """Why a machine cannot build the kit, in one line; "" when it can.

    Args:
      os_name: string: `repository_os.name`, e.g. `linux`, `mac os x`.
      arch: string: `repository_os.arch`, e.g. `amd64`, `aarch64`.

    Returns:
      The message, or "" for Linux on x86_64.
    """
    if os_name == _LINUX and arch in _X86_64:
        return ""
    return ("this machine is {} on {}; the kit builds and tests on Linux x86_64 only (its " +
            "Python is Debian's, for x86_64): use a Linux x86_64 machine, or a Linux x86_64 " +
            "VM or container on this one (docs/hosts.md)").format(os_name, arch)

def require_linux_x86_64(module_ctx):
    """Fails the module extension when the machine is not Linux x86_64.

    Args:
      module_ctx: the module extension's context.
    """
    problem = unsupported_host(module_ctx.os.name, module_ctx.os.arch)
    if problem:
        fail(problem)
