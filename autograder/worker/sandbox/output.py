"""A pipe for a kernel's stdout and stderr, read by the grader with a cap.

RUNS IN A GRADING WORKER. The kernel's file descriptors 1 and 2 (which ipykernel also
echoes cell output to) must not be the grader's: a terminal there could be read from
and written to. A thread reads the pipe, keeps the first ``limit`` bytes and drops the
rest, so a flood costs no memory.
"""
import os
import threading


class CappedPipe:
    """The kernel's stdout and stderr; ``text()`` is what was kept of them."""

    def __init__(self, limit):
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0
        self._read, self.write_end = os.pipe()
        self._thread = None

    def start(self):
        """The kernel holds the write end now: close ours and start reading."""
        os.close(self.write_end)
        self.write_end = None
        self._thread = threading.Thread(target=self._drain, daemon=True, name="kernel-output")
        self._thread.start()

    def _drain(self):
        try:
            while chunk := os.read(self._read, 65536):
                room = max(self.limit - len(self.kept), 0)
                self.kept += chunk[:room]
                self.dropped += len(chunk) - min(room, len(chunk))
        finally:
            os.close(self._read)

    def close(self):
        """Close the write end if the kernel never started (reading ends by itself otherwise)."""
        if self.write_end is not None:
            os.close(self.write_end)
            self.write_end = None
        if self._thread is None and self._read is not None:
            os.close(self._read)
            self._read = None

    def text(self):
        """What the kernel wrote, as text safe to show (control characters escaped)."""
        text = bytes(self.kept).decode("utf-8", "replace")
        return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)
