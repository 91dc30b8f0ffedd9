"""ProxyRotation, proxy URLs, and what a job records of them."""

from __future__ import annotations

import pytest

from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError
from shoal.core.proxies import ProxyRotation, check_proxy, read_proxy_list, redacted


def test_round_robin_skips_a_proxy_taken_out_until_it_has_rested() -> None:
    rotation = ProxyRotation(["http://a:1", "http://b:1"], failures=2, rest=10.0)
    assert [rotation.choose(0.0) for _ in range(4)] == ["http://a:1", "http://b:1"] * 2
    assert not rotation.failed("http://a:1", 1.0)
    assert rotation.failed("http://a:1", 1.0)
    assert rotation.out(2.0) == ["http://a:1"] and rotation.taken_out == 1
    assert {rotation.choose(2.0) for _ in range(3)} == {"http://b:1"}
    assert rotation.choose(11.0) == "http://a:1"  # rested: back in the rotation


def test_success_resets_the_count_and_with_every_proxy_out_the_soonest_back_is_used() -> None:
    rotation = ProxyRotation(["http://a:1", "http://b:1"], failures=2, rest=10.0)
    rotation.failed("http://a:1", 0.0)
    rotation.worked("http://a:1")
    assert not rotation.failed("http://a:1", 0.0)
    rotation.failed("http://a:1", 0.0)
    rotation.failed("http://b:1", 5.0)
    rotation.failed("http://b:1", 5.0)
    assert rotation.out(6.0) == ["http://a:1", "http://b:1"]
    assert rotation.choose(6.0) == "http://a:1"  # never direct


def test_proxy_urls_are_checked_and_recorded_without_credentials() -> None:
    assert redacted("http://u:p@proxy:3128/") == "http://proxy:3128/"
    assert check_proxy(" https://proxy:443 ") == "https://proxy:443"
    assert check_proxy("socks5://h:1080") == "socks5://h:1080"
    with pytest.raises(ConfigError, match="a proxy is") as caught:
        check_proxy("ftp://u:secret@h:21")
    assert "secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="does not rotate"):
        CrawlConfig(proxies=("socks5://a:1", "http://b:1"))
    with pytest.raises(ConfigError, match="list:3"):
        read_proxy_list(["# c", "http://a:1", "nope"], source="list")
    assert read_proxy_list(["http://a:1", "", "http://a:1"], source="l") == ("http://a:1",)
    config = CrawlConfig(proxies=("http://u:secret@proxy:3128",))
    record = config.as_record()
    assert record["proxies"] == ["http://proxy:3128"] and "secret" not in str(record)
    assert CrawlConfig.from_record(record).proxies == ("http://proxy:3128",)
