"""Peak resident memory of the current process, for the benchmarks and the fuzz worker.

Linux ``getrusage(RUSAGE_SELF).ru_maxrss`` survives ``fork`` + ``exec``: a process
started from a large parent (a pytest session holding torch and every model, or the
benchmark after its in-process analysis) reports at least the parent's resident size
at fork time. ``VmHWM`` in ``/proc/self/status`` belongs to the process's own address
space, which ``exec`` replaces, so it measures only what the process itself used.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes.

    ``VmHWM`` of ``/proc/self/status`` (kB) where it exists, else ``ru_maxrss``
    (KiB on Linux; may include the parent's size, see the module docstring).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
