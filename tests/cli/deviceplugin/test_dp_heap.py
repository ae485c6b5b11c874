"""``release_free_memory`` gives freed heap pages back to the system (glibc ``malloc_trim``):
in a fresh interpreter, 64 MiB of freed blocks held below a live one (so glibc's own trimming of
the heap's top can't release them) leave the resident size only once it is called."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

PROGRAM = """
from gpu_operator.deviceplugin.heap import release_free_memory
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
blocks = [bytearray(4000) for _ in range(16384)]  # 64 MiB of malloc'd (not pymalloc) blocks
pin = bytearray(4000)  # above them in the heap
del blocks
freed = rss()
released = release_free_memory()
print(freed, rss(), released)
"""


def test_freed_heap_memory_goes_back_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True
    ).stdout
    freed_kib, after_kib, released = out.split()
    assert released == "True"
    assert int(freed_kib) - int(after_kib) > 48 * 1024, out
