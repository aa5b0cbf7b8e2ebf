"""A node process's lifecycle on its host: the pid file, listening addresses, stopping.

``node.pid`` holds ``{"pid", "host", "port", ...}`` of the running node and is
the node's *instance lock*: the serving process holds an exclusive
``flock(2)`` on it for its whole life. A second ``accord node start`` on the
same directory finds the lock held and refuses with one line naming the
running pid; a pid file left by a killed node (no lock held) is stale and
taken over. ``accord node stop`` reads the pid only while the lock proves the
process is the node (a reused pid is never signalled), sends SIGTERM and
waits until the process has exited: the serving process removes the file on
shutdown but keeps its lock until exit, and ``node stop`` waits on the lock
of the inode it opened before signalling.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from federation.errors import FederationError


class NodeRunningError(FederationError):
    """Another process already serves this node directory (it holds ``node.pid``'s lock)."""

    reason = "NODE_RUNNING"


class NodeNotRunningError(FederationError):
    """No process serves this node directory (``node stop`` with nothing to stop)."""

    reason = "NODE_NOT_RUNNING"


class AddressInUseError(FederationError):
    """A configured listening address is taken by another process."""

    reason = "ADDRESS_IN_USE"


class PidFile:
    """The held ``node.pid`` of a serving node (see the module docstring).

    Use :meth:`acquire`; call :meth:`update` to add fields (ports once bound)
    and :meth:`release` on shutdown.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._released = False
        self._info: dict[str, Any] = {}

    @classmethod
    def acquire(cls, path: Path) -> PidFile:
        """Take the instance lock on ``path`` (created 0600) and write this process's pid.

        Raises:
            NodeRunningError: another live process holds the lock (message names its pid).

        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            pid = read_pidfile(path).get("pid", "?")
            raise NodeRunningError(
                f"a node already runs in {path.parent} (pid {pid}, {path.name}); "
                "stop it first with `accord node stop`",
                metadata={"pid": str(pid), "path": str(path)},
            ) from None
        held = cls(path, fd)
        held.update(pid=os.getpid())
        return held

    def update(self, **fields: Any) -> None:
        """Add ``fields`` to the pid file's JSON object and rewrite it in place (the lock stays held)."""
        self._info.update(fields)
        data = json.dumps(self._info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Remove the pid file (idempotent); the lock stays held until the process exits.

        ``accord node stop`` waits on the lock of the inode it opened, so it
        returns only once the process has closed its files, i.e. has exited,
        not merely once the file is gone.
        """
        if self._released:
            return
        self._released = True
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_pidfile(path: Path) -> dict[str, Any]:
    """The pid file's JSON object (``{}`` when missing or unreadable)."""
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def running_pid(path: Path) -> int | None:
    """The pid of the live node holding ``path``'s lock, or None (no file, or a stale one)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                pid = read_pidfile(path).get("pid")
                return int(pid) if isinstance(pid, int) else None
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)  # we got it: nobody holds it, the file is stale
        return None
    finally:
        os.close(fd)


def stop_node(path: Path, *, timeout: float = 30.0, kill: bool = False) -> int:
    """Stop the node holding pid file ``path``: SIGTERM, then wait until the process has exited.

    The wait is on the lock of the pid file's inode opened before the signal:
    it is released only when the process's files close (at exit), whether or
    not the file was removed meanwhile.

    Args:
        path: the node's ``node.pid``.
        timeout: seconds to wait for a graceful stop.
        kill: send SIGKILL when ``timeout`` passes (else raise).

    Returns:
        The pid that was stopped.

    Raises:
        NodeNotRunningError: no live node holds the pid file.
        FederationError: ``STOP_TIMEOUT`` when it is still running after
            ``timeout`` seconds and ``kill`` is false.

    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise NodeNotRunningError(f"no node is running in {path.parent} ({path.name} absent)") from None
    try:
        if _lock_free(fd):
            raise NodeNotRunningError(f"no node is running in {path.parent} ({path.name} is stale)")
        pid = read_pidfile(path).get("pid")
        if not isinstance(pid, int):
            raise NodeNotRunningError(f"{path} names no pid")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if _wait_free(fd, timeout):
            return pid
        if not kill:
            raise FederationError(
                f"node (pid {pid}) still running {timeout:g} s after SIGTERM; retry, or pass --kill",
                reason="STOP_TIMEOUT",
            )
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_free(fd, 10.0)
        return pid
    finally:
        os.close(fd)


def _lock_free(fd: int) -> bool:
    """True when no process holds the lock of ``fd``'s file (probed with a shared lock, then dropped)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def _wait_free(fd: int, timeout: float) -> bool:
    """Poll until the holder of the lock on ``fd`` has exited; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _lock_free(fd):
            return True
        time.sleep(0.1)
    return _lock_free(fd)


def check_bindable(address: str, *, setting: str) -> None:
    """Refuse early, in one line, a ``HOST:PORT`` another process already listens on.

    Port 0 (any free port) always passes. Binding is tried the way servers bind
    (``SO_REUSEADDR``, so a port in TIME_WAIT passes) and released at once;
    a race with another process remains possible and is then reported by the
    server itself.

    Args:
        address: ``HOST:PORT`` (IPv6 hosts in brackets or bare).
        setting: the ``node.toml`` key it comes from (named in the message).

    Raises:
        AddressInUseError: the address is taken (or cannot be bound at all).

    """
    host, _, port_text = address.rpartition(":")
    port = int(port_text)
    if port == 0:
        return
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise AddressInUseError(
            f"{setting} = {address!r} in node.toml: cannot resolve {host!r}: {exc.strerror}",
            metadata={"field": setting},
        ) from None
    family, socktype, proto, _, sockaddr = infos[0]
    with socket.socket(family, socktype, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(sockaddr)
        except OSError as exc:
            what = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise AddressInUseError(
                f"{setting} = {address!r} in node.toml: {what}", metadata={"field": setting}
            ) from None
