"""The messages between a crawl and its fetch processes: every one travels intact, and a
child of another wire version is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shoal.core.config import CrawlConfig, Limits
from shoal.core.links import PageLinks
from shoal.core.model import FetchResult, Request
from shoal.engine.fetch.fetcher import Attempt
from shoal.engine.fetch.wire import (
    WIRE_VERSION,
    Answer,
    ChildSettings,
    FetchOrder,
    FrameReader,
    Ready,
    frame,
)


def _round_trip(message: object) -> object:
    (back,) = FrameReader().feed(frame(message))
    return back


def _settings(**changes: object) -> ChildSettings:
    values: dict[str, object] = {
        "config": CrawlConfig(limits=Limits(concurrency=3)),
        "keep_body": True,
        "links": None,
        "extract_rules": ["title=css:title::text"],
        "save_bodies": False,
    }
    values.update(changes)
    return ChildSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "message",
    [
        _settings(),
        Ready(),
        [
            FetchOrder(1, Request(id=7, url="http://a.test/x", host="a.test")),
            FetchOrder(
                2,
                Request(
                    id=8,
                    url="http://a.test/form",
                    host="a.test",
                    method="POST",
                    headers=(("X-Y", "z"),),
                    body=b"\0\xff",
                    depth=3,
                    parent_url="http://a.test/",
                    attempts=2,
                    suspect=True,
                    crashes=1,
                ),
            ),
        ],
        [
            Answer(
                1,
                Attempt(
                    FetchResult(request_id=7, url="http://a.test/x", status=200, bytes=2),
                    b"ok",
                    None,
                    links=PageLinks(base="http://a.test/x", links=("http://a.test/y",)),
                    fields_done=True,
                ),
            )
        ],
    ],
    ids=["settings", "ready", "orders", "answers"],
)
def test_every_message_travels_intact(message: object) -> None:
    assert _round_trip(message) == message


def test_messages_carry_the_wire_version() -> None:
    assert _settings().version == Ready().version == WIRE_VERSION


def test_a_child_refuses_settings_of_another_version() -> None:
    """Started by exec, as a crawl starts one, and sent settings of another version: it
    says nothing and exits."""
    from_parent, to_child = os.pipe()
    from_child, to_parent = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", "shoal.engine.fetch.child", str(from_parent), str(to_parent)],
        pass_fds=(from_parent, to_parent),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(from_parent)
    os.close(to_parent)
    try:
        os.write(to_child, frame(_settings(version=WIRE_VERSION + 1)))
        with os.fdopen(from_child, "rb") as output:
            assert output.read() == b""  # EOF: it exited without a word
        assert child.wait(timeout=30) == 0
    finally:
        os.close(to_child)
        if child.poll() is None:
            child.kill()
            child.wait()
