"""The file an export is written to: ``FILE.partial`` while it is written, ``FILE`` when done.

One process at a time: the partial file is held under an exclusive ``flock`` from
open to commit, so a second run writing the same file is refused before it
writes anything (``OutputError``). ``commit`` syncs and renames it into place;
``abort`` removes it, so a failed or refused export never leaves half a file
under either name. A failure to write (a full disk) is an ``OutputError`` that
names the file, and the partial file is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shoal.core.errors import ConfigError, OutputError

__all__ = ["OutputFile", "check_directory"]

# Attempts at locking a partial file that another process renamed or removed between our
# open and our lock: each such race means that process finished, so a few always suffice.
_LOCK_ATTEMPTS = 5


def check_directory(path: str) -> None:
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise ConfigError(f"cannot write {path}: directory {target.parent} does not exist")


class OutputFile:
    """``path`` being written, as a binary file held by this process alone."""

    def __init__(self, path: str) -> None:
        check_directory(path)
        self.path = path
        self.partial = f"{path}.partial"
        self.file: BinaryIO = self._open_locked()
        self._closed = False

    def _open_locked(self) -> BinaryIO:
        for _ in range(_LOCK_ATTEMPTS):
            try:
                fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                raise ConfigError(f"cannot write {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(
                    f"{self.path} is being written by another shoal process "
                    f"(it holds {self.partial}); wait for it or choose another file"
                ) from None
            if _same_file(fd, self.partial):
                # Truncate only once the file is ours: the previous holder may have been
                # killed mid-write; its lock died with it.
                os.ftruncate(fd, 0)
                return os.fdopen(fd, "wb")
            os.close(fd)  # renamed into place or removed by its holder meanwhile: again
        raise OutputError(f"cannot lock {self.partial}: it keeps changing under us")

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Turn a failure to write into an ``OutputError`` naming the file, and abort."""
        try:
            yield
        except OutputError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            reason = exc.strerror or str(exc)
            raise OutputError(f"cannot write {self.path}: {reason}") from None

    def commit(self) -> None:
        """Flush, sync and rename into place; the lock goes with the file's close."""
        if self._closed:
            return
        with self.writing():
            self.file.flush()
            os.fsync(self.file.fileno())
            os.replace(self.partial, self.path)
        self._closed = True
        self.file.close()

    def abort(self) -> None:
        """Remove the partial file (while still holding it) and close it; never raises."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.remove(self.partial)
        # Closing flushes what is buffered; on a full disk that fails again, and the file
        # is closed all the same.
        with contextlib.suppress(OSError, ValueError):
            self.file.close()


def _same_file(fd: int, path: str) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
