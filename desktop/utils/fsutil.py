"""Writing files that must never be half-written or readable by others (keys, tokens, accounts),
and the locks that keep two processes from changing the same state at once."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable on POSIX (Windows cannot open directories)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FileTooLarge(ValueError):
    """A file longer than its reader accepts (it was not read beyond that)."""

    def __init__(self, path, limit: int) -> None:
        super().__init__(f"{path} is larger than {limit} bytes")
        self.path, self.limit = path, limit


def read_bounded(path, limit: int, *, follow_links: bool = True) -> bytes:
    """All of a regular file of at most ``limit`` bytes, never more read than ``limit`` + 1: a huge
    file is refused without being read, and a named pipe or a device there is refused without
    blocking (it is opened non-blocking and must be a regular file). Raises FileNotFoundError,
    IsADirectoryError, PermissionError or another OSError (errno EINVAL: not a regular file; ELOOP:
    a link where ``follow_links`` is False), and FileTooLarge. Each caller says these its own way."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise FileTooLarge(path, limit)
    return b"".join(chunks)


def write_private(path: Path, data: bytes) -> None:
    """Atomically (re)place ``path`` with owner-only ``data``: a 0600 temp file in the same
    directory, fsynced, then renamed over the target."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class Locked(Exception):
    """Another process holds the lock; ``holder`` is what it wrote there (its pid and command)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path, self.holder = path, holder


def _lock_fd(fd: int, blocking: bool) -> bool:
    """Take the OS lock on an open file: released by the kernel when the process dies, so a
    kill -9 never leaves a stale lock behind."""
    if os.name == "nt":
        import msvcrt  # Windows only

        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl  # POSIX only

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


class ProcessLock:
    """One holder at a time for a folder's state, for the life of the holding process.

    ``ProcessLock(path).acquire(note)`` takes it or raises :class:`Locked` naming the holder
    (its note: pid and command), touching nothing else; ``release()`` (or the process's death)
    frees it. The lock file itself is left in place: deleting it would let a second process lock a
    new file while the first still holds the old one."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, note: str = "") -> "ProcessLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        if not _lock_fd(fd, blocking=False):
            try:
                holder = os.read(fd, 512).decode("utf-8", "replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            raise Locked(self.path, holder)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()}{': ' + note if note else ''}".encode("utf-8")[:512])
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> "ProcessLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


class exclusive:
    """``with exclusive(path):`` a short critical section across processes (waits for its turn),
    e.g. a read-modify-write of a small JSON file that two commands may change at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> "exclusive":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        _lock_fd(self._fd, blocking=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
