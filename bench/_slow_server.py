"""A loopback HTTP server that holds every request for DELAY seconds, then answers it.

Usage: python _slow_server.py PORT DELAY COUNT_FILE

Writes how many requests it holds right now to COUNT_FILE about every 0.2 s, and
the most it held at once on the second line. Exits on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys

BODY = b"<!doctype html><html><body><p>a slow page</p></body></html>"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + BODY
)


async def main(port: int, delay: float, count_file: str) -> None:
    held = peak = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal held, peak
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        held += 1
        peak = max(peak, held)
        try:
            await asyncio.sleep(delay)
            writer.write(RESPONSE)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            held -= 1
            writer.close()

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    async with server:
        while not stop.is_set():
            _write_count(count_file, held, peak)
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass


def _write_count(path: str, held: int, peak: int) -> None:
    """Two numbers in a small local file: a write too short to matter to the loop."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{held}\n{peak}\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.run(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]))
    except ImportError:
        asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]))
