"""Run a block as an ordinary user would see the file system, also when the tests run as
root (as CI does): root's capabilities to bypass file permissions are cleared from the
calling thread's *effective* set for the block and restored after it (they stay in the
permitted set, so no privilege is lost). Nothing is skipped for lack of a normal user.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["without_root_privileges"]

_VERSION_3 = 0x20080522  # _LINUX_CAPABILITY_VERSION_3
#: CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root ignore modes.
_BYPASS = (1 << 1) | (1 << 2) | (1 << 3)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _caps() -> tuple[ctypes.CDLL, ctypes.Array[_Data]]:
    libc = ctypes.CDLL(None, use_errno=True)
    data = (_Data * 2)()
    if libc.capget(ctypes.byref(_Header(_VERSION_3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    return libc, data


def _set(libc: ctypes.CDLL, data: ctypes.Array[_Data]) -> None:
    if libc.capset(ctypes.byref(_Header(_VERSION_3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


@contextmanager
def without_root_privileges() -> Iterator[None]:
    """File permissions apply inside the block (a no-op for a non-root user)."""
    if os.geteuid() != 0:
        yield
        return
    libc, saved = _caps()
    lowered = (_Data * 2)()
    for i in range(2):
        lowered[i].effective = saved[i].effective & ~_BYPASS
        lowered[i].permitted = saved[i].permitted
        lowered[i].inheritable = saved[i].inheritable
    _set(libc, lowered)
    try:
        yield
    finally:
        _set(libc, saved)
