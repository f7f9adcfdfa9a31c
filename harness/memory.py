"""Keep freed memory in the process: CPU training otherwise spends a third of its time in page faults.

glibc's malloc serves every block above its mmap threshold (128 KiB, adapting up to 32 MiB) with a fresh mmap and
returns it with munmap on free. An AlexNet step frees and reallocates hundreds of MiB of activations and
gradients, so each step page-faults them all back in: ~55,000 minor faults per step at batch 32 and 64 px, 2 of
every 9 CPU seconds in the kernel (measured here with benchmarks/throughput.py's step). Serving large blocks from the
heap and never trimming it makes freed blocks reusable: ~1,700 faults per step and 115 -> 159 images/s for
alexnet2012. The price is that the process keeps its peak memory until it exits. PyTorch's CPU performance guide
recommends jemalloc or tcmalloc for the same reason; mallopt needs no extra package.
"""

from __future__ import annotations

import ctypes
import sys

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Tune glibc malloc (Linux only) so large freed blocks are reused. Returns whether it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # the symbols already loaded into this process, libc's among them (dlopen(NULL)); find_library("c") would
        # start /sbin/ldconfig at every run's start
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    return all(
        (
            mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1,  # blocks up to 1 GiB come from the heap, not from mmap
            mallopt(M_TRIM_THRESHOLD, 1 << 31) == 1,  # never give the top of the heap back to the OS mid-run
            mallopt(M_TOP_PAD, 64 << 20) == 1,  # grow the heap 64 MiB at a time
        )
    )
