"""pickled_by_values: a slotted dataclass crosses a pipe as the tuple of its values."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, dataclass

import pytest

from shoal.core.model import FetchResult, Request
from shoal.core.pickling import pickled_by_values


@pickled_by_values
@dataclass(slots=True, kw_only=True)
class _Point:
    x: int
    y: int = 0
    label: str | None = None


def test_a_value_survives_every_protocol() -> None:
    point = _Point(x=1, y=2, label="p")
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(point, protocol)) == point


def test_a_fetch_result_survives_a_pickle_and_a_copy() -> None:
    result = FetchResult(
        request_id=7,
        url="http://127.0.0.1/a",
        redirects=("http://127.0.0.1/",),
        status=200,
        headers=(("Content-Type", "text/html"),),
        body=b"<p>hi</p>",
        fields={"title": ["hi"]},
        fetched_at=1.5,
    )
    loaded = pickle.loads(pickle.dumps(result, pickle.HIGHEST_PROTOCOL))
    assert loaded == result
    assert type(loaded) is FetchResult
    assert copy.deepcopy(result) == result
    assert copy.copy(result) == result


def test_the_pickle_holds_values_not_field_names() -> None:
    data = pickle.dumps(_Point(x=1, label="p"), pickle.HIGHEST_PROTOCOL)
    assert b"label" not in data


def test_a_frozen_request_survives_a_pickle_and_stays_frozen() -> None:
    request = Request(id=3, url="http://127.0.0.1/b", host="127.0.0.1", headers=(("A", "b"),))
    loaded = pickle.loads(pickle.dumps(request, pickle.HIGHEST_PROTOCOL))
    assert loaded == request
    assert hash(loaded) == hash(request)
    with pytest.raises(FrozenInstanceError):
        loaded.url = "http://127.0.0.1/c"  # type: ignore[misc]


def test_a_class_of_one_field_is_refused() -> None:
    @dataclass(slots=True)
    class Single:
        x: int

    with pytest.raises(TypeError, match="fewer than two"):
        pickled_by_values(Single)


def test_a_class_without_slots_is_refused() -> None:
    @dataclass
    class Plain:
        x: int
        y: int

    with pytest.raises(TypeError, match="slotted"):
        pickled_by_values(Plain)
