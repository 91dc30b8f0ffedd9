"""Tests for shoal.core.traps: URL shapes no real site needs, and pages per host."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.core.errors import ConfigError
from shoal.core.traps import HostBudget, TrapLimits, TrapReason, check_url
from shoal.core.urls import canonicalize

DEFAULT = TrapLimits()
H = "https://h.example"

CHECKS = [
    (H + "/", None),
    (H + "/a/b/c?x=1&y=2", None),
    # length
    (H + "/" + "a" * (2048 - len(H) - 1), None),
    (H + "/" + "a" * (2048 - len(H)), TrapReason.URL_TOO_LONG),
    (H + "/?q=" + "x" * 3000, TrapReason.URL_TOO_LONG),
    # path depth: 16 segments pass, 17 do not; a trailing slash adds none
    (H + "".join(f"/s{i}" for i in range(16)), None),
    (H + "".join(f"/s{i}" for i in range(16)) + "/", None),
    (H + "".join(f"/s{i}" for i in range(16)) + "/x", TrapReason.PATH_TOO_DEEP),
    (H + "/a" + "/" * 16 + "b", TrapReason.PATH_TOO_DEEP),  # empty segments count
    (H + "/" + "/".join(str(i) for i in range(17)) + "?a=/b/c/d", TrapReason.PATH_TOO_DEEP),
    (H + "/" + "/".join(str(i) for i in range(16)) + "?a=/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", None),
    # repeated segments: more than 3 of one segment
    (H + "/a/b/a/b/a/b/", None),
    (H + "/a/b/a/b/a/b/a/", TrapReason.REPEATED_SEGMENTS),
    (H + "/x/x/x/x", TrapReason.REPEATED_SEGMENTS),
    (H + "/x/x/x", None),
    (H + "/x/X/x/X/y", None),  # case matters in paths
    (H + "/a////////b", None),  # empty segments do not count as repeats
    (H + "/cal/2024/01/01/01/01", TrapReason.REPEATED_SEGMENTS),
    (H + "/p?x=a/a/a/a/a", None),  # the query is not the path
    # query parameters: more than 16
    (H + "/?" + "&".join(f"p{i}=1" for i in range(16)), None),
    (H + "/?" + "&".join(f"p{i}=1" for i in range(17)), TrapReason.TOO_MANY_QUERY_PARAMS),
    (H + "/?" + "&".join(f"p{i}" for i in range(17)), TrapReason.TOO_MANY_QUERY_PARAMS),
    (H + "/?a=1" + "&" * 40, None),  # empty pairs are not parameters
    (H + "/?a=1;b=2;c=3", None),
    # the length check comes first
    (H + "/a" * 2000, TrapReason.URL_TOO_LONG),
]


@pytest.mark.parametrize(("url", "expected"), CHECKS)
def test_check_url(url: str, expected: TrapReason | None) -> None:
    assert check_url(url, DEFAULT) == expected


def test_limits_are_configurable() -> None:
    tight = TrapLimits(
        max_url_length=40, max_path_depth=2, max_repeated_segment=1, max_query_params=1
    )
    assert check_url(H + "/a/b?x=1", tight) is None
    assert check_url(H + "/a/b/c", tight) == TrapReason.PATH_TOO_DEEP
    assert check_url(H + "/a/a", tight) == TrapReason.REPEATED_SEGMENTS
    assert check_url(H + "/?x=1&y=2", tight) == TrapReason.TOO_MANY_QUERY_PARAMS
    assert check_url(H + "/" + "a" * 40, tight) == TrapReason.URL_TOO_LONG
    assert check_url(H + "/?", TrapLimits(max_query_params=0)) is None
    assert check_url(H + "/?a", TrapLimits(max_query_params=0)) == "too_many_query_params"


@pytest.mark.parametrize(
    "url", ["", "not a url", "https://", "https://h", "https://h?a&b", "//h/a/a/a/a", "/"]
)
def test_check_url_tolerates_non_urls(url: str) -> None:
    assert check_url(url, DEFAULT) is None


def test_reasons_are_stable_strings() -> None:
    assert {reason.value for reason in TrapReason} == {
        "url_too_long",
        "path_too_deep",
        "repeated_segments",
        "too_many_query_params",
        "host_page_limit",
    }
    assert check_url(H + "/x/x/x/x", DEFAULT) == "repeated_segments"


INVALID_LIMITS = [
    {"max_url_length": 0},
    {"max_path_depth": -1},
    {"max_repeated_segment": 0},
    {"max_query_params": -1},
    {"max_pages_per_host": 0},
    {"max_url_length": 2048.0},
    {"max_path_depth": True},
    {"max_pages_per_host": "10"},
]


@pytest.mark.parametrize("kwargs", INVALID_LIMITS)
def test_invalid_limits(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        TrapLimits(**kwargs)  # type: ignore[arg-type]


def test_limits_are_a_frozen_value_with_documented_defaults() -> None:
    assert dataclasses.asdict(TrapLimits()) == {
        "max_url_length": 2048,
        "max_path_depth": 16,
        "max_repeated_segment": 3,
        "max_query_params": 16,
        "max_pages_per_host": None,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.max_path_depth = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        TrapLimits(2048)  # type: ignore[misc]


# --- host budget ----------------------------------------------------------------


def test_host_budget() -> None:
    budget = HostBudget(2)
    assert [budget.admit("a") for _ in range(4)] == [True, True, False, False]
    assert budget.admit("b") is True
    assert (budget.count("a"), budget.count("b"), budget.count("c")) == (2, 1, 0)
    assert budget.limit == 2
    assert budget.reason == "host_page_limit"


def test_host_budget_without_limit_admits_everything() -> None:
    budget = HostBudget.from_limits(TrapLimits())
    assert all(budget.admit("a") for _ in range(1000))
    assert budget.count("a") == 1000


def test_host_budget_restores_counts() -> None:
    budget = HostBudget.from_limits(TrapLimits(max_pages_per_host=3))
    restored = HostBudget(3, counts={"a": 3, "b": 1})
    assert budget.admit("a") is True
    assert restored.admit("a") is False
    assert [restored.admit("b") for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_host_budget_rejects_bad_limits(limit: object) -> None:
    with pytest.raises(ConfigError):
        HostBudget(limit)  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------


@given(st.text(max_size=300), st.integers(1, 5), st.integers(0, 5))
def test_check_url_never_raises(url: str, depth: int, params: int) -> None:
    limits = TrapLimits(
        max_url_length=100,
        max_path_depth=depth,
        max_repeated_segment=depth,
        max_query_params=params,
    )
    result = check_url(url, limits)
    assert result is None or isinstance(result, TrapReason)


SEGMENTS = st.text(alphabet="abcdefghij0123456789-._~%", min_size=1, max_size=8)


@given(
    st.lists(SEGMENTS, max_size=16, unique=True),
    st.booleans(),
    st.lists(st.from_regex(r"[a-z]{1,4}=[a-z0-9]{0,4}", fullmatch=True), max_size=16),
)
def test_urls_under_every_limit_pass(segments: list[str], slash: bool, params: list[str]) -> None:
    url = canonicalize(
        H + "/" + "/".join(segments) + ("/" if slash else "") + ("?" + "&".join(params))
    )
    assert len(url) <= DEFAULT.max_url_length
    assert check_url(url, DEFAULT) is None


@given(
    st.lists(st.text(alphabet="abc019-_~", min_size=1, max_size=8), min_size=1, max_size=4),
    st.integers(4, 8),
)
def test_a_path_nested_into_itself_is_caught(cycle: list[str], times: int) -> None:
    url = canonicalize(H + "/" + "/".join(cycle * times) + "/")
    assert check_url(url, DEFAULT) in {TrapReason.REPEATED_SEGMENTS, TrapReason.PATH_TOO_DEEP}
