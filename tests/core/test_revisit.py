"""A recrawl's decisions: durations, conditional headers, what each answer means."""

from __future__ import annotations

import pickle

import pytest

from shoal.core.errors import ConfigError
from shoal.core.jobspec import JobSpec
from shoal.core.model import Request
from shoal.core.revisit import DEFAULT_KEEP_HISTORY, Recrawl, Revisit, change_of, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("12h", 43_200.0),
        ("1d", 86_400.0),
        ("2w", 1_209_600.0),
        (" 1.5H ", 5400.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "1y", "-1d", "0", "1 d h", "nan", "1e400d"])
def test_a_bad_duration_is_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="duration") as caught:
        parse_duration(text)
    assert "\n" not in str(caught.value)


def test_recrawl_older_than() -> None:
    assert Recrawl().fetched_before(1000.0) is None
    assert Recrawl(older_than=60.0).fetched_before(1000.0) == 940.0
    for bad in (0, -5.0, float("inf"), True, "1d"):
        with pytest.raises(ConfigError, match="older_than"):
            Recrawl(older_than=bad)  # type: ignore[arg-type]


def test_conditional_headers_come_from_the_validators_there_are() -> None:
    both = Revisit('"e1"', "Tue, 14 Nov 2023 22:13:20 GMT", 200, "h")
    assert both.headers() == (
        ("If-None-Match", '"e1"'),
        ("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT"),
    )
    assert Revisit(None, "x", 200, None).headers() == (("If-Modified-Since", "x"),)
    assert Revisit(None, None, 200, "h").headers() == ()


OK = Revisit('"e"', None, 200, "same")
FAILED = Revisit(None, None, None, None, "timeout")
NOT_FOUND = Revisit(None, None, 404, "nf")
TOO_LARGE = Revisit(None, None, 200, None, "too_large")


@pytest.mark.parametrize(
    ("before", "status", "error_kind", "body_hash", "change"),
    [
        (OK, 304, None, "empty", "unchanged"),
        (OK, 200, None, "same", "unchanged"),  # no validators, same body
        (OK, 200, None, "other", "changed"),
        (OK, 200, "too_large", None, "gone"),
        (OK, 404, None, "x", "gone"),
        (OK, 410, None, "x", "gone"),
        (OK, 503, None, "x", "gone"),
        (OK, None, "connect_error", None, "gone"),
        (OK, None, "robots_disallowed", None, "gone"),
        (FAILED, 200, None, "new", "changed"),
        (FAILED, None, "timeout", None, "unchanged"),  # failing as before
        (FAILED, None, "connect_error", None, "changed"),  # failing otherwise
        (NOT_FOUND, 404, None, "nf2", "unchanged"),
        (NOT_FOUND, 410, None, "x", "changed"),
        (NOT_FOUND, 304, None, "x", "unchanged"),
        (TOO_LARGE, 200, "too_large", None, "unchanged"),  # cut at the cap again
        (TOO_LARGE, 200, None, "small", "changed"),
        (TOO_LARGE, None, "timeout", None, "changed"),
    ],
)
def test_what_an_answer_means(
    before: Revisit, status: int | None, error_kind: str | None, body_hash: str | None, change: str
) -> None:
    assert change_of(before, status=status, error_kind=error_kind, body_hash=body_hash) == change


def test_a_request_carries_its_revisit_across_a_pipe() -> None:
    request = Request(id=1, url="https://a.test/", host="a.test", revisit=OK)
    assert pickle.loads(pickle.dumps(request)) == request


def test_keep_history_is_a_setting_of_the_job() -> None:
    spec = JobSpec.crawl(["https://a.test/"])
    assert spec.keep_history == DEFAULT_KEEP_HISTORY
    kept = JobSpec.crawl(["https://a.test/"], keep_history=7)
    assert JobSpec.from_record("crawl", kept.as_record()).keep_history == 7
    # A change applies from now on, like other settings of how the work is done.
    comparison = kept.compare(spec)
    assert not comparison.conflicts and comparison.changes
    for bad in (-1, 1001, 2.0, True):
        with pytest.raises(ConfigError, match="keep_history"):
            JobSpec.crawl(["https://a.test/"], keep_history=bad)
