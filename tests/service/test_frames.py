"""Events written straight to the clients' transports by a real uvicorn server: the
contract holds there too (bounded, a slow client gets a dropped count, then pages again;
one that stays blocked is closed), and a client that reads is never held back."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from shoal.core.model import FetchResult
from shoal.service import ServiceSettings, create_app
from shoal.service._events import EventHub
from shoal.service._frames import FramesProtocol
from shoal.service._heap import ClientHeap

URL_PAD = "x" * 8000  # big messages fill the sockets' buffers quickly


@contextlib.asynccontextmanager
async def uvicorn_serving(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[EventHub, str]]:
    """The app under uvicorn with ``FramesProtocol`` on 127.0.0.1: (its hub, ws URL)."""
    app = create_app(
        ServiceSettings(store=str(tmp_path / "service.db"), allow_private=True, **settings)
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws=FramesProtocol,
        ws_per_message_deflate=False,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=None))
    try:
        async with asyncio.timeout(30):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield app.state.shoal.hub, f"ws://127.0.0.1:{port}/events"
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await serving


def pages(start: int, count: int) -> list[FetchResult]:
    return [
        FetchResult(request_id=n, url=f"http://a.test/{n}?{URL_PAD}", status=200, elapsed_ms=1.0)
        for n in range(start, start + count)
    ]


async def read_until_id(ws: ClientConnection, last: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        async for text in ws:
            message = json.loads(text)
            got.append(message)
            if message["type"] == "page" and message["id"] == last:
                return got
    raise AssertionError("closed first")


async def subscribed(hub: EventHub, count: int) -> None:
    async with asyncio.timeout(30):
        # The service counts a client after its handshake; it offers no event for it.
        while hub.clients < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_stuck_client_gets_a_dropped_count_then_pages_and_a_reader_gets_all(
    tmp_path: Path,
) -> None:
    async with uvicorn_serving(tmp_path, ws_queue=20, ws_page_rate=0) as (hub, url):
        # The stuck one reads nothing it is not asked to: its socket buffers fill.
        async with connect(url, max_size=None, max_queue=1) as stuck:
            await subscribed(hub, 1)
            (stuck_subscriber,) = hub._subscribers
            async with connect(url, max_size=None) as reader:
                await subscribed(hub, 2)
                sent = 0
                for _ in range(400):  # at most 32 MB: far more than loopback buffers
                    hub.publish_pages("a", pages(sent, 20))
                    sent += 20
                    got = await read_until_id(reader, sent - 1)
                    ids = [m["id"] for m in got if m["type"] == "page"]
                    assert ids == list(range(sent - 20, sent))  # the reader misses nothing
                    if stuck_subscriber.dropped_total:
                        break
                assert stuck_subscriber.lagging and stuck_subscriber.dropped_total > 0
                hub.publish_progress("a", {"finished": sent})
                # Now it reads: what was written, then a dropped count, then pages again.
                dropped = 0
                received: list[int] = []
                async with asyncio.timeout(30):
                    async for text in stuck:
                        message = json.loads(text)
                        if message["type"] == "page":
                            received.append(message["id"])
                        elif message["type"] == "dropped":
                            dropped = message["count"]
                            break
                assert received == sorted(received) and dropped > 0
                assert len(received) + dropped == sent
                hub.publish_pages("a", pages(sent, 3))
                later = await read_until_id(stuck, sent + 2)
                assert [m["id"] for m in later if m["type"] == "page"] == [
                    sent,
                    sent + 1,
                    sent + 2,
                ]


async def test_a_client_whose_transport_stays_full_is_closed(tmp_path: Path) -> None:
    async with uvicorn_serving(tmp_path, ws_queue=1000, ws_page_rate=0, ws_send_timeout=0.5) as (
        hub,
        url,
    ):
        async with connect(url, max_size=None, max_queue=1):
            await subscribed(hub, 1)
            (subscriber,) = hub._subscribers
            sent = 0
            async with asyncio.timeout(60):
                # Publishing until the hub gives up on it: it is unsubscribed once closed.
                while hub.clients:
                    if not subscriber.lagging:
                        hub.publish_pages("a", pages(sent, 20))
                        sent += 20
                    await asyncio.sleep(0.05)  # the hub writes on its own tick
            assert subscriber.kicked is None  # closed for the blocked send, not for strikes


async def test_the_heap_is_frozen_after_a_burst_of_clients_and_handed_back_as_they_leave() -> None:
    heap = ClientHeap(step=3, delay=0)
    try:
        before = gc.get_freeze_count()
        for _ in range(3):
            heap.joined()
        await asyncio.sleep(0)  # the freeze runs at the loop's next turn
        await asyncio.sleep(0)
        assert heap.frozen == 3 and gc.get_freeze_count() > before
        heap.left()
        assert heap.frozen == 3  # one of three left: what it held may wait
        heap.left()
        assert heap.frozen == 0 and gc.get_freeze_count() == 0
    finally:
        heap.close()
