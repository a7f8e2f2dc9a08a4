"""One writer per model directory.

`WriterLock(model_dir)` holds an exclusive `flock` on `model_dir/.writer.lock`
while a run writes the directory. A second run on the same directory fails at
once with `ModelDirBusyError`, naming the process that holds it, instead of
resuming or overwriting a run that is still alive. The operating system drops
the lock when its process ends, however it ends (a killed run leaves no stale
lock: the next run resumes it). The lock is re-entrant within a process, so
the command and the training loop it calls can both take it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".writer.lock"
_HELD: dict[Path, list] = {}  # resolved folder -> [open file, depth]


class ModelDirBusyError(RuntimeError):
    """Another live process is writing the model directory."""


class WriterLock:
    """Context manager: the exclusive right to write `model_dir` (created if missing)."""

    def __init__(self, model_dir: str | os.PathLike):
        self.model_dir = Path(model_dir)

    def __enter__(self) -> WriterLock:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        key = self.model_dir.resolve()
        if key in _HELD:
            _HELD[key][1] += 1
            return self
        handle = open(key / LOCK_FILE, "a+")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ModelDirBusyError(
                f"--model-dir {self.model_dir} is being written by a live run ({holder}); "
                "wait for it to finish, or choose another --model-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        _HELD[key] = [handle, 1]
        return self

    def __exit__(self, *exc) -> None:
        key = self.model_dir.resolve()
        held = _HELD[key]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[key]
            fcntl.flock(held[0], fcntl.LOCK_UN)
            held[0].close()
