"""Bad input to the real ``shoal`` command: one clear line, a documented exit code, no traceback.

Every case runs ``shoal`` in a child process with a narrow terminal (``COLUMNS=60``), so
a message wrapped onto a second line would show. Exit codes are the README's: 2 usage
(bad flag, value or input file), 3 store, 4 invalid lines under ``--strict``.
"""

from __future__ import annotations

import errno
import gzip
import io
import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal.testweb import SiteSpec, TestWeb

from .conftest import Ran, result_rows, run_shoal

USAGE, STORE, STRICT = 2, 3, 4


@pytest.fixture(scope="module")
def site() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=2, pages=20)) as web:
        yield web


def assert_clear(ran: Ran, code: int, *says: str, lines: int | None = 1) -> None:
    """Exit ``code``; every stderr line is a ``shoal:`` line; the message says ``says``."""
    context = f"exit {ran.code}, stderr:\n{ran.stderr}"
    assert ran.code == code, context
    assert "Traceback" not in ran.stderr, context
    messages = ran.messages
    assert messages, context
    assert all(line.startswith("shoal: ") for line in messages), context
    if lines is not None:
        assert len(messages) == lines, context
    for text in says:
        assert text in ran.stderr, f"{text!r} not in: {ran.stderr}"


# --- input files -------------------------------------------------------------------


@dataclass
class InputCase:
    content: Callable[[str], bytes]  # from a valid URL of the site
    code: int
    says: tuple[str, ...]
    lines: int | None = 1
    args: tuple[str, ...] = ()


def _random_bytes(_url: str) -> bytes:
    return random.Random(7).randbytes(200_000)


def _nested_json(url: str) -> bytes:
    return ('{"url": ' + "[" * 20_000 + "]" * 20_000 + "}\n").encode()


INPUTS = {
    "random-bytes": InputCase(_random_bytes, USAGE, ("in.txt: binary data", "NUL")),
    "nul-inside-text": InputCase(
        lambda url: f"{url}\n{url}?x=\0\n".encode(), USAGE, ("binary data", "offset")
    ),
    "gzip": InputCase(
        lambda url: gzip.compress(f"{url}\n".encode()), USAGE, ("gzip-compressed data",)
    ),
    "utf-16": InputCase(lambda url: f"{url}\n".encode("utf-16"), USAGE, ("UTF-16 text",)),
    "empty": InputCase(lambda _url: b"", USAGE, ("no valid URLs",)),
    "only-comments": InputCase(lambda _url: b"# nothing\n\n   \n", USAGE, ("no valid URLs",)),
    "huge-line-only": InputCase(
        lambda _url: b"http://a/" + b"x" * 50_000_000,
        USAGE,
        ("in.txt:1: line too long (50,000,009 bytes", "no valid URLs"),
        lines=3,
    ),
    "nested-json-only": InputCase(
        _nested_json, USAGE, ("in.txt:1: invalid JSON: nested too deeply",), lines=3
    ),
    "non-http-schemes-strict": InputCase(
        lambda url: (
            f"{url}\nftp://x/f\nmailto:a@b.c\njavascript:alert(1)\nfile:///etc/passwd\n"
            "data:text/plain,x\n"
        ).encode(),
        STRICT,
        (
            "in.txt:2: unsupported scheme 'ftp'",
            "in.txt:6: unsupported scheme 'data'",
            "nothing was fetched",
        ),
        lines=7,
        args=("--strict",),
    ),  # fmt: skip
    "invalid-utf8-and-surrogate-strict": InputCase(
        lambda url: f"{url}\n".encode() + b"http://a/\xff\n" + b'{"url": "http://a/\\ud800"}\n',
        STRICT,
        ("in.txt:2: not valid UTF-8", "nothing was fetched"),
        lines=None,
        args=("--strict",),
    ),
}


@pytest.mark.parametrize("case", INPUTS.values(), ids=list(INPUTS))
def test_bad_input_file(case: InputCase, site: TestWeb, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(case.content(site.url(0, "/page/1")))
    ran = run_shoal("fetch", "in.txt", "--quiet", *case.args, cwd=tmp_path)
    assert_clear(ran, case.code, *case.says, lines=case.lines)
    if (tmp_path / "shoal.db").exists():
        assert result_rows(tmp_path / "shoal.db", "in") == []


def test_huge_line_is_skipped_and_the_rest_fetched(site: TestWeb, tmp_path: Path) -> None:
    url = site.url(0, "/page/2")
    with (tmp_path / "in.txt").open("wb") as out:
        out.write(b"http://a/" + b"x" * 50_000_000 + b"\n")
        out.write(f"{url}\n".encode())
    ran = run_shoal("fetch", "in.txt", "--quiet", cwd=tmp_path)
    assert_clear(ran, 0, "in.txt:1: line too long (50,000,009 bytes", lines=2)
    assert result_rows(tmp_path / "shoal.db", "in") == [(url, 200, None)]


def test_non_http_schemes_are_reported_and_skipped(site: TestWeb, tmp_path: Path) -> None:
    url = site.url(1, "/page/3")
    lines = ["ftp://x/f", "mailto:a@b.c", "javascript:alert(1)", "file:///etc/passwd", url]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    ran = run_shoal("fetch", "in.txt", "--quiet", cwd=tmp_path)
    assert_clear(ran, 0, "in.txt:1: unsupported scheme 'ftp'", "4 invalid input line(s)", lines=5)
    assert result_rows(tmp_path / "shoal.db", "in") == [(url, 200, None)]


def test_100k_duplicate_lines_are_admitted_once(site: TestWeb, tmp_path: Path) -> None:
    url = site.url(0, "/page/4")
    spellings = [
        url,
        url.replace("http://", "HTTP://"),
        url + "#fragment",
        url.replace("/page", "/./page"),
    ]
    (tmp_path / "in.txt").write_text("".join(f"{spellings[n % 4]}\n" for n in range(100_000)))
    ran = run_shoal("fetch", "in.txt", "--quiet", cwd=tmp_path)
    assert ran.code == 0 and ran.stderr == "", ran.stderr
    assert result_rows(tmp_path / "shoal.db", "in") == [(url, 200, None)]
    with sqlite3.connect(tmp_path / "shoal.db") as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone() == (1,)


def test_idn_hosts_are_punycoded_and_fetched(site: TestWeb, tmp_path: Path) -> None:
    port = site.port
    lines = [
        f"http://bücher.test:{port}/page/1",
        f"http://BÜCHER.test:{port}/page/1#same",
        f"http://xn--bcher-kva.test:{port}/page/1",
        f"http://☃.test:{port}/page/2",
        f"http://１２７.０.０.２:{port}/page/3",  # full-width digits: an IPv4 address
        f"http://xn--zz.test:{port}/",  # not valid punycode
    ]
    (tmp_path / "idn.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    hosts = f"xn--bcher-kva.test={site.addresses[0]},xn--n3h.test={site.addresses[1]}"
    ran = run_shoal(
        "fetch", "idn.txt", "--quiet", cwd=tmp_path, loopback_names=True,
        env={"SHOAL_TEST_HOSTS": hosts},
    )  # fmt: skip
    assert_clear(ran, 0, "idn.txt:6: invalid IDNA host", lines=2)
    assert result_rows(tmp_path / "shoal.db", "idn") == [
        (f"http://127.0.0.2:{port}/page/3", 200, None),
        (f"http://xn--bcher-kva.test:{port}/page/1", 200, None),
        (f"http://xn--n3h.test:{port}/page/2", 200, None),
    ]

    crawl = run_shoal(
        "crawl", f"http://Bücher.test:{port}/", "--max-pages", "5", "--quiet", cwd=tmp_path,
        loopback_names=True, env={"SHOAL_TEST_HOSTS": hosts},
    )  # fmt: skip
    assert crawl.code == 0, crawl.stderr
    rows = result_rows(tmp_path / "shoal.db", "xn--bcher-kva.test")
    assert len(rows) == 5
    assert all(url.startswith(f"http://xn--bcher-kva.test:{port}/") for url, _, _ in rows)


# --- flags, values and the --config file -------------------------------------------


@dataclass
class UsageCase:
    args: tuple[str, ...]
    says: tuple[str, ...]
    files: dict[str, bytes] = field(default_factory=dict)  # "c_toml" writes c.toml


def _usage(*args: str, says: str | tuple[str, ...], **files: bytes) -> UsageCase:
    return UsageCase(args, (says,) if isinstance(says, str) else says, files)


def _config(command: tuple[str, ...], says: str, toml: bytes) -> UsageCase:
    return _usage("--config", "c.toml", *command, says=says, c_toml=toml)


FETCH = ("fetch", "u.txt")
USAGE_CASES = {
    "negative-concurrency": _usage(*FETCH, "--concurrency", "-1", says="--concurrency"),
    "zero-concurrency": _usage(*FETCH, "--concurrency", "0", says="--concurrency"),
    "timeout-abc": _usage(*FETCH, "--timeout", "abc", says=("--timeout", "'abc'")),
    "unknown-flag": _usage(*FETCH, "--bogus", says=("No such option", "--bogus")),
    "bad-byte-size": _usage(*FETCH, "--max-bytes", "lots", says="not a byte size"),
    "delay-nan": _usage(*FETCH, "--delay", "nan", says="delay must be a finite number"),
    "timeout-inf": _usage(*FETCH, "--timeout", "inf", says="timeout must be a finite number"),
    "max-pages-overflow": _usage(
        "crawl", "http://x.test/", "--max-pages", "1" + "0" * 30, says="--max-pages"
    ),
    "unknown-command": _usage("fecth", "u.txt", says="No such command"),
    "missing-input": _usage("fetch", "nothing.txt", says="nothing.txt: no such file"),
    "directory-input": _usage("fetch", "adir", says="adir is a directory"),
    "output-suffix": _usage(*FETCH, "-o", "out.xyz", says="cannot tell the format"),
    "output-directory": _usage(*FETCH, "-o", "adir.jsonl", says="adir.jsonl is a directory"),
    "output-under-file": _usage(
        *FETCH, "-o", "u.txt/x.jsonl", says=("cannot write u.txt/x.jsonl", "not a directory")
    ),
    "empty-store": _usage(*FETCH, "--store", "", says="store location is empty"),
    "store-url": _usage(*FETCH, "--store", "mysql://x/y", says="unsupported store location"),
    "crawl-no-seed": _usage("crawl", says="Missing argument"),
    "crawl-ftp-seed": _usage("crawl", "ftp://x/", says="unsupported scheme 'ftp'"),
    "crawl-empty-label": _usage("crawl", "http://a..b/", says="empty label"),
    "crawl-bad-regex": _usage(
        "crawl", "http://x.test/", "--include", "(", says="invalid include pattern"
    ),
    "crawl-negative-depth": _usage("crawl", "http://x.test/", "--depth", "-1", says="--depth"),
    "crawl-negative-per-host": _usage(
        "crawl", "http://x.test/", "--per-host", "-3", says="--per-host"
    ),
    "toml-syntax": _config(FETCH, "c.toml is not valid TOML", b"concurrency = [\n"),
    "toml-binary": _config(FETCH, "not UTF-8", b"\xff\xfe\x00garbage\x9c"),
    "toml-unknown-key": _config(FETCH, "'concurency' is not an option", b"concurency = 4\n"),
    "toml-key-of-other-command": _config(FETCH, "[fetch] 'depth'", b"[fetch]\ndepth = 2\n"),
    "toml-unknown-table": _config(("stats",), "unknown table [fecth]", b"[fecth]\nretries = 1\n"),
    "toml-wrong-type": _config(FETCH, "'many'", b'concurrency = "many"\n'),
    "toml-negative": _config(FETCH, "--timeout", b"[fetch]\ntimeout = -1\n"),
    "toml-list-for-a-number": _config(
        FETCH, "concurrency must be an integer, got [1, 2]", b"concurrency = [1, 2]\n"
    ),
    "toml-bool-for-a-number": _config(
        FETCH, "processes must be an integer, got True", b"[fetch]\nprocesses = true\n"
    ),
    "toml-number-for-a-flag": _config(
        FETCH, "save_bodies must be true or false, got 1", b"save_bodies = 1\n"
    ),
    "toml-table-for-a-string": _config(
        FETCH, "user_agent must be a string", b"[fetch.user_agent]\nx = 1\n"
    ),
    "toml-nul-in-user-agent": _config(
        FETCH, "user agent must not contain control characters", b'user_agent = "a\\u0000b"\n'
    ),
    "user-agent-with-a-newline": _usage(
        *FETCH, "--user-agent", "a\nX-Injected: 1", says="user agent must not contain control"
    ),
    "crawl-host-over-253": _usage(
        "crawl", "http://" + ".".join(["a" * 50] * 6) + "/", says="at most 253"
    ),
    "toml-missing": _usage("--config", "none.toml", *FETCH, says="cannot read none.toml"),
    "toml-directory": _usage("--config", "adir", *FETCH, says="cannot read adir"),
    "export-without-job": _usage("export", "-o", "x.jsonl", says=("Missing option", "--job")),
    "export-bad-format": _usage(
        "export", "--job", "u", "-o", "x", "--format", "xml", says="--format"
    ),
}


@pytest.mark.parametrize("case", USAGE_CASES.values(), ids=list(USAGE_CASES))
def test_bad_flag_or_value(case: UsageCase, tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.jsonl").mkdir()
    for name, content in case.files.items():
        (tmp_path / name.replace("_", ".")).write_bytes(content)
    ran = run_shoal(*case.args, cwd=tmp_path)
    assert_clear(ran, USAGE, *case.says)
    assert not (tmp_path / "shoal.db").exists()


def test_bad_value_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    ran = run_shoal("fetch", "u.txt", cwd=tmp_path, env={"SHOAL_CONCURRENCY": "-5"})
    assert_clear(ran, USAGE, "SHOAL_CONCURRENCY", "-5")
    assert not (tmp_path / "shoal.db").exists()


def test_unknown_job_in_an_existing_store(site: TestWeb, tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text(site.url(0, "/page/5") + "\n")
    assert run_shoal("fetch", "u.txt", "--quiet", cwd=tmp_path).code == 0
    for args in (("stats", "--job", "nope"), ("export", "--job", "nope", "-o", "x.jsonl")):
        assert_clear(run_shoal(*args, cwd=tmp_path), USAGE, "no job named 'nope'", "(jobs: u)")


# --- stores that cannot be used -----------------------------------------------------

COMMANDS = {
    "fetch": ("fetch", "u.txt", "--quiet", "--store"),
    "crawl": ("crawl", "http://127.0.0.1:9/", "--quiet", "--store"),
    "stats": ("stats", "--store"),
    "export": ("export", "--job", "u", "-o", "x.jsonl", "--store"),
}


def _corrupt(path: Path) -> None:
    path.write_bytes(random.Random(11).randbytes(64 * 1024))


def _corrupt_with_header(path: Path) -> None:
    rng = random.Random(12)
    path.write_bytes(b"SQLite format 3\x00" + rng.randbytes(64 * 1024 - 16))


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada'), ('grace')")
    conn.close()


@pytest.mark.parametrize("make", [_corrupt, _corrupt_with_header, _foreign])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_corrupt_or_foreign_store_is_refused_untouched(
    command: str, make: Callable[[Path], None], tmp_path: Path
) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    store = tmp_path / "data.db"
    make(store)
    before = store.read_bytes()
    ran = run_shoal(*COMMANDS[command], "data.db", cwd=tmp_path)
    assert_clear(ran, STORE, "store error: data.db is not a shoal store")
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("data.db*")) == ["data.db"]


def test_store_corrupt_past_its_schema_is_a_store_error(site: TestWeb, tmp_path: Path) -> None:
    urls = [site.url(h, f"/page/{n}?q={q}") for h in range(2) for n in range(20) for q in range(40)]
    (tmp_path / "u.txt").write_text("\n".join(urls) + "\n")
    assert run_shoal("fetch", "u.txt", "--quiet", "--store", "data.db", cwd=tmp_path).code == 0
    with sqlite3.connect(tmp_path / "data.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        roots = max(row[0] for row in conn.execute("SELECT rootpage FROM sqlite_master"))
    conn.close()
    data = bytearray((tmp_path / "data.db").read_bytes())
    # Keep the schema and the first page of every table and index; scramble the rest.
    start = (roots + 1) * page_size
    assert len(data) > 2 * start
    data[start:] = random.Random(13).randbytes(len(data) - start)
    (tmp_path / "data.db").write_bytes(bytes(data))
    for command in COMMANDS:
        ran = run_shoal(*COMMANDS[command], "data.db", cwd=tmp_path)
        assert_clear(ran, STORE, "store error", "data.db", "corrupt")


UNUSABLE = {
    "under-a-file": ("u.txt/shoal.db", "not a directory"),
    "proc": ("/proc/shoal.db", "/proc/shoal.db"),
    "a-directory": ("adir", "it is a directory"),
    "missing-directory": ("no/such/dir/shoal.db", "does not exist"),
}


@pytest.mark.parametrize("location", UNUSABLE.values(), ids=list(UNUSABLE))
@pytest.mark.parametrize("command", ["fetch", "crawl"])
def test_unwritable_store_path(command: str, location: tuple[str, str], tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/\n")
    (tmp_path / "adir").mkdir()
    path, says = location
    ran = run_shoal(*COMMANDS[command], path, cwd=tmp_path)
    assert_clear(ran, STORE, "store error", says)


@pytest.mark.parametrize("command", ["stats", "export"])
def test_reading_a_missing_store_creates_nothing(command: str, tmp_path: Path) -> None:
    for path in ("nothing.db", "u.txt/shoal.db"):
        (tmp_path / "u.txt").write_text("x")
        ran = run_shoal(*COMMANDS[command], path, cwd=tmp_path)
        assert_clear(ran, STORE, f"store error: {path} does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.txt"]


def test_the_exit_codes_used_here_are_documented() -> None:
    from shoal.cli.exits import EXIT_CODES

    documented = {line.split()[0]: line for line in EXIT_CODES.splitlines()[2:]}
    assert "usage error" in documented[str(USAGE)]
    assert "store error" in documented[str(STORE)]
    assert "--strict" in documented[str(STRICT)]


def test_a_read_error_mid_input_is_one_clear_failure() -> None:
    from shoal.cli.admit import _LineReader
    from shoal.cli.exits import EXIT_USAGE, CliFailure

    class FailingDisk(io.BytesIO):
        name = "urls.txt"

        def readline(self, size: int | None = -1) -> bytes:
            if self.tell() >= 30:
                raise OSError(errno.EIO, "Input/output error")
            return super().readline(size)

    reader = _LineReader(FailingDisk(b"http://a.test/1\nhttp://a.test/2\nhttp://a.test/3\n"))
    with pytest.raises(CliFailure) as failure:
        reader.next_batch()
    assert str(failure.value) == "urls.txt: cannot read line 3: Input/output error"
    assert failure.value.code == EXIT_USAGE
