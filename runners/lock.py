"""One writer per run folder (DESIGN.md principles): an flock on `<run>/.lock` recording pid, host and parent.

flock is released by the kernel when its holder dies, even on kill -9, so a crashed writer never
leaves a stale lock; the file's contents (who holds it) are only shown while the lock is held.
On network file systems without flock support the lock degrades to "always free".
"""
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from roadmap import files

LOCK_NAME = ".lock"


def _host() -> str:
    return socket.gethostname()


class RunLock:
    """Exclusive, non-blocking lock of one run folder; `acquire()` says whether this process got it."""

    def __init__(self, run_dir, parent_pid: int = None):
        self.run_dir = Path(run_dir)
        self.parent_pid = parent_pid
        self.fd = None

    def acquire(self, attempts: int = 5) -> bool:
        files.make_dirs(self.run_dir)
        fd = os.open(self.run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, files.FILE_MODE)
        os.fchmod(fd, files.FILE_MODE)
        # A few tries: `holder()` probes with a brief shared lock, which must not make a writer give up.
        for attempt in range(attempts):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP):  # file system without locks
                        break
                    os.close(fd)
                    raise
                if attempt == attempts - 1:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        record = json.dumps(dict(pid=os.getpid(), host=_host(), parent_pid=self.parent_pid)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record + b"\n", 0)
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            # The file stays: removing it would let a waiting process lock an unlinked inode.
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def holder(run_dir):
    """{pid, host, parent_pid} of the live process writing this run, or None when nobody holds its lock."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            try:
                record = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:  # caught between truncate and write
                record = {}
            return dict(pid=record.get("pid"), host=record.get("host", "?"), parent_pid=record.get("parent_pid"))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe(record: dict) -> str:
    return f"being written by pid {record['pid']} on host {record['host']}"


def pid_alive(pid) -> bool:
    """Whether a process of this host runs under `pid` (a zombie counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def orphaned(record: dict) -> bool:
    """A holder on this host whose launching `r3bench run` is gone: it stops itself within a second."""
    return record.get("host") == _host() and record.get("parent_pid") is not None and not pid_alive(record["parent_pid"])
