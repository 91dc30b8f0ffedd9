"""The operating-system side of fetch processes: forking, starting by exec, reaping.

``fork_children`` forks children before the command has any thread or event loop
(a fork then has every module loaded and is ready in milliseconds); ``spawn``
starts one as ``python -m shoal.engine.fetch.child READ_FD WRITE_FD``. Either
way this process holds a ``ChildProcess``: its pid and this end of its two pipes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys

__all__ = ["ChildProcess", "fork_children", "spawn", "take_preforked"]


@dataclasses.dataclass(slots=True)
class ChildProcess:
    """A child as this process holds it: its pid and this end of its two pipes."""

    pid: int
    to_child: int
    from_child: int
    popen: subprocess.Popen[bytes] | None = None  # set when started by exec

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def reaped(self) -> bool:
        """Collect the exit status if the child has exited; True once it has."""
        if self.popen is not None:
            return self.popen.poll() is not None
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return pid != 0

    async def wait_reaped(self) -> None:
        """Wait until the child has exited, and collect its exit status.

        Woken by the child's pidfd, which becomes readable when it exits (Linux); where
        there is none, a thread waits for it instead."""
        if self.reaped():
            return
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:  # gone and collected already
            return
        except (AttributeError, OSError):
            await asyncio.to_thread(self._wait_blocking)
            return
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        try:
            loop.add_reader(pidfd, readable)
            try:
                if not self.reaped():
                    await exited
                    self.reaped()
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)

    def _wait_blocking(self) -> None:
        if self.popen is not None:
            self.popen.wait()
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


_preforked: list[ChildProcess] = []


def fork_children(count: int) -> None:
    """Fork ``count`` fetch processes now, for ``take_preforked``: call it before any
    thread or event loop exists."""
    pipes = [(*os.pipe(), *os.pipe()) for _ in range(count)]
    for mine in pipes:
        from_parent, to_child, from_child, to_parent = mine
        pid = os.fork()
        if pid == 0:  # the child: keep its own two ends, close every other descriptor
            try:
                _close_all_but(from_parent, to_parent)
                from shoal.engine.fetch.child import serve_forever
                from shoal.engine.profiling import child_profile_path, profiled

                with profiled(child_profile_path(os.getpid())):
                    serve_forever(from_parent, to_parent)
            finally:
                os._exit(0)
        _preforked.append(ChildProcess(pid, to_child, from_child))
    for from_parent, _, _, to_parent in pipes:
        os.close(from_parent)
        os.close(to_parent)


def _close_all_but(*keep: int) -> None:
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _max_fd())


def _max_fd() -> int:
    try:
        return max(int(name) for name in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return os.sysconf("SC_OPEN_MAX")


def take_preforked(count: int) -> list[ChildProcess]:
    taken = _preforked[:count]
    del _preforked[:count]
    return taken


def spawn() -> ChildProcess:
    """Start a child by exec; its pipes are handed down as two descriptor numbers."""
    from_parent, to_child = os.pipe()
    from_child, to_parent = os.pipe()
    try:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shoal.engine.fetch.child",
                str(from_parent),
                str(to_parent),
            ],
            pass_fds=(from_parent, to_parent),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except BaseException:
        for fd in (from_parent, to_child, from_child, to_parent):
            os.close(fd)
        raise
    os.close(from_parent)
    os.close(to_parent)
    return ChildProcess(popen.pid, to_child, from_child, popen)
