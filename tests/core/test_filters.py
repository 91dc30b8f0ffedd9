from __future__ import annotations

import pytest

from shoal.core.errors import ConfigError
from shoal.core.filters import ResultFilter, parse_statuses
from shoal.core.model import FetchResult


def _result(status: int | None, kind: str | None = None) -> FetchResult:
    return FetchResult(request_id=1, url="http://a.test/", status=status, error_kind=kind)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2xx", ((2,), ())),
        ("4XX,5xx", ((4, 5), ())),
        ("404", ((), (404,))),
        (" 2xx , 404,404 ", ((2,), (404,))),
    ],
)
def test_parse_statuses(text: str, parsed: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    assert parse_statuses(text) == parsed


@pytest.mark.parametrize("text", ["", "6xx", "2x", "99", "1000", "abc", "2xx,"])
def test_parse_statuses_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="not a class like 2xx"):
        parse_statuses(text)


def test_a_filter_refuses_unknown_values() -> None:
    with pytest.raises(ConfigError, match="unknown error kind 'nope'; choose one of"):
        ResultFilter(error_kinds=("nope",))
    with pytest.raises(ConfigError, match="100 to 599"):
        ResultFilter(statuses=(600,))
    with pytest.raises(ConfigError, match="1xx to 5xx"):
        ResultFilter(status_classes=(0,))


@pytest.mark.parametrize(
    ("where", "status", "kind", "expected"),
    [
        (ResultFilter(), None, "dns_error", True),
        (ResultFilter(failed=True), 200, None, False),
        (ResultFilter(failed=True), 404, None, True),
        (ResultFilter(failed=True), 200, "too_large", True),
        (ResultFilter(failed=True), None, "dns_error", True),
        (ResultFilter(status_classes=(2,)), None, "dns_error", False),
        (ResultFilter(status_classes=(2,), statuses=(404,)), 404, None, True),
        (ResultFilter(error_kinds=("dns_error",), failed=True), 500, None, False),
    ],
)
def test_matches(where: ResultFilter, status: int | None, kind: str | None, expected: bool) -> None:
    assert where.matches(_result(status, kind)) is expected
