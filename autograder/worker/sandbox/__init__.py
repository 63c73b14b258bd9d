"""Kernels in a bubblewrap sandbox: its layout, the two ways a kernel starts in it, the
limits watched from outside, and the programs that run inside it (``programs/``, real
files run by path). ``SandboxedKernelManager`` is the entry point (manager.py)."""
from .accounting import resident_bytes, sandbox_processes
from .manager import SandboxedKernelManager, bwrap_available
from .output import CappedPipe

__all__ = ["CappedPipe", "SandboxedKernelManager", "bwrap_available", "resident_bytes", "sandbox_processes"]
