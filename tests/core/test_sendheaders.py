"""ExtraHeaders: which host gets what, what a job stores of them, and reruns."""

from __future__ import annotations

import pytest

from shoal.core.errors import ConfigError
from shoal.core.jobspec import JobSpec
from shoal.core.model import Request
from shoal.core.sendheaders import ExtraHeaders

EXTRA = ExtraHeaders.parse(
    headers=["X-Every: e", "Authorization: Token t", "X-Both: from-H"],
    headers_for=[("API.example.org.", "X-Key: k"), ("api.example.org", "X-Both: from-for")],
    user="alice:pa:ss",
)


def test_credentials_go_only_to_credential_hosts_and_header_for_wins() -> None:
    api = dict(EXTRA.for_host("api.example.org", credentials=False))
    assert api == {"X-Every": "e", "X-Key": "k", "X-Both": "from-for"}
    seed = dict(EXTRA.for_host("seed.example.org", credentials=True))
    assert seed["Authorization"] == "Basic YWxpY2U6cGE6c3M="  # alice:pa:ss
    assert seed["X-Both"] == "from-H" and "X-Key" not in seed


def test_a_requests_own_headers_win() -> None:
    before_fetch = EXTRA.before_fetch(frozenset({"seed.example.org"}))
    assert before_fetch is not None
    request = Request(id=1, url="http://seed.example.org/", host="seed.example.org",
                      headers=(("x-every", "mine"),))  # fmt: skip
    sent = before_fetch(request).headers
    assert ("x-every", "mine") in sent and ("X-Every", "e") not in sent
    assert ExtraHeaders().before_fetch(None) is None


def test_the_summary_names_without_values_and_repr_hides_them() -> None:
    assert EXTRA.summary() == (
        "--header-for api.example.org x-both",
        "--header-for api.example.org x-key",
        "--user",
        "-H authorization",
        "-H x-both",
        "-H x-every",
    )
    assert "pa:ss" not in repr(EXTRA) and "Token" not in repr(EXTRA)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"headers": ["nocolon"]}, "Name: value"),
        ({"headers": ["Bad Name: v"]}, "invalid header name"),
        ({"headers": ["Content-Length: 3"]}, "set by shoal"),
        ({"headers": ["X: a\x01b"]}, "control character"),
        ({"headers_for": [("http://h/", "X: v")]}, "without scheme"),
        ({"user": "nocolon"}, "USER:PASSWORD"),
        ({"user": "a:b", "bearer": "t"}, "not both"),
        ({"bearer": ""}, "token"),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ExtraHeaders.parse(**settings)  # type: ignore[arg-type]


def test_a_job_stores_names_only_and_a_rerun_must_give_them_again() -> None:
    spec = JobSpec.crawl(["http://seed.example.org/"], extra_headers=EXTRA)
    record = spec.as_record()
    assert record["extra_headers"] == list(EXTRA.summary())
    assert "pa:ss" not in str(record) and "Token t" not in str(record)
    stored = JobSpec.from_record("crawl", record)
    assert stored.extra_headers.missing and not stored.extra_headers.given
    assert spec.credential_hosts() == frozenset({"seed.example.org"})
    # Other values under the same names resume the job (a rotated token)...
    rotated = ExtraHeaders.parse(
        headers=["X-Every: 2", "Authorization: Token 2", "X-Both: 2"],
        headers_for=[("api.example.org", "X-Key: 2"), ("api.example.org", "X-Both: 2")],
        user="alice:new",
    )
    assert (
        not JobSpec.crawl(["http://seed.example.org/"], extra_headers=rotated)
        .compare(stored)
        .conflicts
    )
    assert stored.extra_headers.with_values_of(rotated) is rotated
    # ...none at all, or other names, do not.
    bare = JobSpec.crawl(["http://seed.example.org/"])
    assert bare.compare(stored).conflicts == ("extra_headers",)
    with pytest.raises(ConfigError, match="--user"):
        stored.extra_headers.with_values_of(ExtraHeaders())
    # A job without extra headers records none, as jobs stored before them did.
    assert bare.as_record()["extra_headers"] is None
    assert JobSpec.fetch().compare(JobSpec.from_record("fetch", {})).same
