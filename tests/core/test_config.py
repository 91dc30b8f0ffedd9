"""Configuration values are checked where they become config objects: types, ranges and
characters, each refused with a one-line ConfigError naming the setting."""

from __future__ import annotations

import math

import pytest

from shoal.core.config import (
    CrawlConfig,
    Limits,
    Politeness,
    RetryPolicy,
    Timeouts,
    check_bool,
    check_header_value,
    check_host_name,
    check_int,
    check_number,
)
from shoal.core.errors import ConfigError


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Limits(concurrency=[1, 2]), "concurrency must be an integer, got [1, 2]"),
        (lambda: Limits(concurrency=True), "concurrency must be an integer, got True"),
        (lambda: Limits(concurrency=2.5), "concurrency must be an integer, got 2.5"),
        (lambda: Limits(concurrency=0), "concurrency must be ≥ 1, got 0"),
        (lambda: Limits(processes=True), "processes must be an integer, got True"),
        (lambda: Limits(processes=-1), "processes must be ≥ 0, got -1"),
        (lambda: Limits(max_bytes="10"), "max_bytes must be an integer, got '10'"),
        (lambda: Timeouts(total=math.nan), "total timeout must be a finite number, got nan"),
        (lambda: Timeouts(read=False), "read timeout must be a number, got False"),
        (lambda: Politeness(per_host=None), "per_host must be an integer, got None"),
        (lambda: RetryPolicy(retries=True), "retries must be an integer, got True"),
        (lambda: RetryPolicy(retry_statuses=frozenset({True})), "retry status"),
        (lambda: CrawlConfig(user_agent="a\x00b"), "user agent must not contain control"),
        (lambda: CrawlConfig(user_agent="a\r\nX-Evil: 1"), "user agent must not contain"),
        (lambda: CrawlConfig(user_agent=" "), "user agent must not be empty"),
        (lambda: CrawlConfig(user_agent=5), "user agent must be a string, got 5"),
        (lambda: CrawlConfig(save_bodies="yes"), "save_bodies must be true or false"),
    ],
)
def test_bad_values_are_one_line_config_errors(build: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_good_values_pass_unchanged() -> None:
    assert check_int("n", 3) == 3
    assert check_int("n", 0, minimum=0) == 0
    assert check_number("t", 0.5) == 0.5
    assert check_bool("b", False) is False
    assert (
        check_header_value("ua", "shoal/1 (tab\there; caf\u00e9)")
        == "shoal/1 (tab\there; caf\u00e9)"
    )
    assert check_host_name("host", "api.example.org.") == "api.example.org."
    assert check_host_name("host", "127.0.0.1") == "127.0.0.1"
    assert CrawlConfig(limits=Limits(concurrency=1, processes=0)).limits.processes == 0


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (".".join(["a" * 50] * 6), "305 characters long; a host name has at most 253"),
        ("a" * 64 + ".org", "an empty label or one over 63"),
        ("a..b", "an empty label"),
        ("", "must be a non-empty host name"),
        (7, "must be a non-empty host name, got 7"),
    ],
)
def test_host_names_a_resolver_cannot_look_up_are_refused(host: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_host_name("host", host)
