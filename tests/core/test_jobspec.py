"""The JobSpec: validation, records, default names, and what a rerun may change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shoal.core.config import CrawlConfig, Limits, Politeness
from shoal.core.errors import ConfigError, InputError
from shoal.core.jobspec import MAX_COUNT, MAX_DEPTH, JobSpec


def crawl(**settings: object) -> JobSpec:
    return JobSpec.crawl(["http://example.org/docs/"], **settings)  # type: ignore[arg-type]


def test_seeds_are_canonical_and_deduplicated() -> None:
    spec = JobSpec.crawl(["HTTP://Example.org:80/a/../b", "http://example.org/b"])
    assert spec.seeds == ("http://example.org/b",)
    assert spec.config.follow_links


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"depth": -1}, "depth must be a whole number from 0"),
        ({"depth": MAX_DEPTH + 1}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"max_pages": 0}, "max_pages"),
        ({"max_pages": MAX_COUNT + 1}, "max_pages"),
        ({"max_pages": True}, "max_pages"),
        ({"scope": "planet"}, "scope must be one of"),
        ({"include": "a"}, "include must be a list"),
        ({"exclude": ["("]}, "invalid exclude pattern"),
        ({"robots": "yes"}, "robots must be true or false"),
    ],
)
def test_bad_settings_are_one_line_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        crawl(**settings)


def test_a_bad_seed_names_its_position() -> None:
    with pytest.raises(InputError) as caught:
        JobSpec.crawl(["http://ok.example/", "ftp://nope/"])
    assert caught.value.line_no == 2


def test_a_fetch_takes_no_seeds_and_a_crawl_needs_them() -> None:
    with pytest.raises(ConfigError):
        JobSpec(kind="fetch", seeds=("http://example.org/",))
    with pytest.raises(ConfigError):
        JobSpec(kind="crawl", config=CrawlConfig(follow_links=True))


def test_the_record_round_trips() -> None:
    spec = crawl(
        config=CrawlConfig(limits=Limits(concurrency=7), follow_links=True),
        scope="prefix",
        include=("a",),
        exclude=("b",),
        depth=3,
        max_pages=10,
        sitemaps=True,
        robots=False,
    )
    assert JobSpec.from_record("crawl", spec.as_record()) == spec
    fetch = JobSpec.fetch(input="urls.txt", input_digest="d", strict=True)
    assert JobSpec.from_record("fetch", fetch.as_record()) == fetch


def test_default_names() -> None:
    assert crawl().default_name() == "example.org"
    assert JobSpec.fetch(input="/data/urls.2024.txt").default_name() == "urls"
    assert JobSpec.fetch(input="-").default_name() == "stdin"
    assert JobSpec.fetch().default_name() == "fetch"


def test_the_same_spec_compares_the_same() -> None:
    assert crawl(depth=2).compare(crawl(depth=2)).same


def test_raised_limits_and_run_settings_apply() -> None:
    old = crawl(depth=1, max_pages=10)
    faster = replace(
        old.config,
        limits=Limits(concurrency=64),
        politeness=Politeness(per_host=4),
        save_bodies=True,
    )
    new = replace(old, depth=2, max_pages=None, config=faster)
    comparison = new.compare(old)
    assert not comparison.conflicts
    assert set(comparison.raised) == {"depth", "max_pages"}
    assert "depth 1 → 2" in comparison.changes
    assert "max_pages 10 → none" in comparison.changes
    assert any(change.startswith("save_bodies") for change in comparison.changes)
    assert any("concurrency 256 → 64" in change for change in comparison.changes)


def test_identity_changes_and_lowered_limits_conflict() -> None:
    old = crawl(depth=2)
    assert new_conflicts(crawl(depth=1), old) == ("depth (lowered from 2 to 1)",)
    assert new_conflicts(crawl(depth=2, scope="prefix"), old) == ("scope",)
    other_seed = JobSpec.crawl(["http://example.org/other/"], depth=2)
    assert new_conflicts(other_seed, old) == ("seeds",)
    rules = replace(old, config=replace(old.config, user_agent="other/1"))
    assert new_conflicts(rules, old) == ("user_agent",)


def test_input_content_is_identity_unless_unknown() -> None:
    a = JobSpec.fetch(input="urls.txt", input_digest="aaa")
    assert new_conflicts(JobSpec.fetch(input="urls.txt", input_digest="bbb"), a) == ("input",)
    assert JobSpec.fetch(input="-").compare(a).conflicts == ()


def new_conflicts(new: JobSpec, old: JobSpec) -> tuple[str, ...]:
    return new.compare(old).conflicts


def test_the_http_client_is_a_run_setting() -> None:
    old = crawl()
    rust = replace(old, config=replace(old.config, http="pyreqwest", http2=True))
    comparison = rust.compare(old)
    assert not comparison.conflicts
    assert any(change.startswith("http ") for change in comparison.changes)
    assert JobSpec.from_record("crawl", rust.as_record()) == rust


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"http": "curl"}, "http must be one of auto, aiohttp, pyreqwest"),
        ({"http": "aiohttp", "http2": True}, "http2 needs the pyreqwest client"),
        ({"http": "pyreqwest", "proxies": ("http://127.0.0.1:3128",)}, "proxies need the aiohttp"),
        ({"http2": True, "proxies": ("http://127.0.0.1:3128",)}, "http2 needs the pyreqwest"),
    ],
)
def test_an_unknown_client_or_http2_on_aiohttp_is_refused(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        CrawlConfig(**settings)  # type: ignore[arg-type]
