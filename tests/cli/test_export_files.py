"""``shoal export --format files`` and ``--with-text`` end to end, on both stores, with the
results written through the store (hostile URLs no real site would serve us)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from shoal.core.model import Completion, FetchResult, NewRequest
from shoal.core.urls import canonicalize
from shoal.store import open_store
from shoal.testweb import TestWeb

from .conftest import run_shoal

_T = 1_700_000_000.0

HOSTILE = [
    ("http://a.test/", b"<html>root</html>"),
    ("http://a.test/../../../../../../tmp/escaped", b"traversal"),
    ("http://a.test/%2e%2e/%2e%2e/%2e%2e/tmp/escaped2", b"encoded traversal"),
    ("http://a.test/..%2f..%2f..%2fescaped3", b"encoded slashes"),
    ("http://a.test/CON", b"device"),
    ("http://a.test/nul.txt", b"device with extension"),
    ("http://a.test/" + "long" * 400 + ".html", b"very long name"),
    ("http://a.test/page", b"a file named page"),
    ("http://a.test/page/child", b"needs page as a directory"),
    ("http://a.test/PAGE", b"case collision"),
    ("http://a.test/ctl%0d%0a%07.txt", b"control characters"),
    ("http://b.test:8080/q?x=1&y=/etc/passwd", b"query"),
]


async def _seed(location: str, job: str, pages: list[tuple[str, bytes, str | None]]) -> None:
    store = open_store(location)
    await store.open()
    try:
        info = await store.ensure_job(job, mode="fetch", config={})
        await store.add_requests(info.id, [NewRequest.for_url(u) for u, _, _ in pages], now=_T)
        leased = await store.lease(info.id, "seed", limit=1000, now=_T, ttl=60)
        by_url = {url: (body, encoding) for url, body, encoding in pages}
        results = []
        for request in leased:
            body, encoding = by_url[request.url]
            results.append(
                FetchResult(
                    request_id=request.id,
                    url=request.url,
                    status=200,
                    content_type="text/html; charset=utf-8" if encoding is None else "text/html",
                    bytes=len(body),
                    body_hash=f"h{request.id}",
                    body=body,
                    encoding=encoding,
                    fetched_at=_T,
                )
            )
        await store.complete(info.id, "seed", Completion(results=results), now=_T)
    finally:
        await store.close()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_files_export_keeps_every_body_inside_the_directory(
    tmp_path: Path, store_location: str
) -> None:
    pages = [(canonicalize(url), body, None) for url, body in HOSTILE]
    asyncio.run(_seed(store_location, "hostile", pages))
    work = tmp_path / "work"
    work.mkdir()
    before = set(os.listdir(tmp_path))

    ran = run_shoal(
        "export", "--store", store_location, "--job", "hostile", "--format", "files",
        "-o", "out", cwd=work,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert set(os.listdir(tmp_path)) == before  # nothing escaped next to work/
    assert os.listdir(work) == ["out"]  # no .partial left behind
    out = work / "out"
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert sorted(r["url"] for r in index) == sorted(u for u, _, _ in pages)
    files = _tree(out)
    assert files == {r["file"] for r in index} | {"index.jsonl"}
    assert len(files) == len(pages) + 1
    bodies = {url: body for url, body, _ in pages}
    for record in index:
        path = out / record["file"]
        assert path.resolve().is_relative_to(out.resolve())
        assert path.read_bytes() == bodies[record["url"]]
        assert (record["status"], record["content_type"]) == (200, "text/html; charset=utf-8")
        for segment in record["file"].split("/"):
            assert segment not in ("..", ".") and len(segment.encode()) <= 120
            assert segment.split(".")[0].upper() not in ("CON", "NUL", "PRN", "AUX")

    again = run_shoal(
        "export", "--store", store_location, "--job", "hostile", "--format", "files",
        "-o", "out", cwd=work,
    )  # fmt: skip
    assert again.code == 2
    assert again.stderr.strip() == "shoal: cannot write files to out: it exists and is not empty"

    second = run_shoal(
        "export", "--store", store_location, "--job", "hostile", "--format", "files",
        "-o", "out2", cwd=work,
    )  # fmt: skip
    assert second.code == 0, second.stderr
    assert _tree(work / "out2") == files  # the same names every time
    assert (work / "out2" / "index.jsonl").read_text() == (out / "index.jsonl").read_text()


def test_with_text_decodes_with_the_recorded_encoding(tmp_path: Path, store_location: str) -> None:
    russian = "Привет, мир"
    pages = [
        ("http://a.test/utf8", f"<p>{russian}</p>".encode(), "utf-8"),
        ("http://a.test/cp1251", f"<p>{russian}</p>".encode("cp1251"), "cp1251"),
        ("http://a.test/undeclared", b"<p>plain</p>", None),
    ]
    asyncio.run(_seed(store_location, "texts", pages))
    ran = run_shoal(
        "export", "--store", store_location, "--job", "texts", "-o", "-", "--with-text",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    texts = {r["url"]: r["text"] for r in map(json.loads, ran.stdout.splitlines())}
    assert texts == {
        "http://a.test/utf8": f"<p>{russian}</p>",
        "http://a.test/cp1251": f"<p>{russian}</p>",
        "http://a.test/undeclared": "<p>plain</p>",
    }
    plain = run_shoal(
        "export", "--store", store_location, "--job", "texts", "-o", "-", cwd=tmp_path
    )
    assert "text" not in json.loads(plain.stdout.splitlines()[0])


def test_files_export_of_a_job_without_bodies_says_how_to_get_them(
    tmp_path: Path, site: TestWeb
) -> None:
    (tmp_path / "u.txt").write_text(site.url(0, "/page/1") + "\n")
    assert run_shoal("fetch", "u.txt", "--quiet", cwd=tmp_path).code == 0
    ran = run_shoal("export", "--job", "u", "--format", "files", "-o", "d", cwd=tmp_path)
    assert ran.code == 2
    assert "run with --save-bodies" in ran.stderr
    assert not (tmp_path / "d").exists() and not (tmp_path / "d.partial").exists()
