"""End to end: ``shoal fetch``/``crawl`` with extraction rules against a real site, and the
fields in CSV, JSONL and Parquet — written live (``-o``) and exported from the store."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from shoal.testweb import SiteSpec, TestWeb

from .. import shop

FLAGS = [f"--extract={name}={rule}" for name, rule in shop.RULES.items()]


@pytest.fixture(scope="module")
def site() -> Iterator[TestWeb]:
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=5), extra_routes=shop.routes) as web:
        yield web


def shoal(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    for name in ("SHOAL_STORE", "SHOAL_EXTRACT", "SHOAL_CONFIG"):
        if name not in (env or {}):
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "shoal", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )


def path_of(url: str) -> str:
    return url.split("/shop/", 1)[1]


def by_path(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {path_of(str(row["url"])): row for row in rows}


def check_fields(rows: dict[str, dict[str, object]], paths: list[str]) -> None:
    assert sorted(rows) == sorted(paths)
    for path, row in rows.items():
        assert row["fields"] == shop.expected(path), path


def test_fetch_with_rules_writes_fields_live_and_exports_them(
    site: TestWeb, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(site.url(0, f"/shop/{p}") + "\n" for p in shop.PAGES))
    done = shoal("fetch", str(urls), "--quiet", "-o", "live.csv", *FLAGS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    # Live CSV: one column per rule, in rule order, and the encoding each page was read in.
    with (tmp_path / "live.csv").open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames is not None
        assert reader.fieldnames[-len(shop.RULES) :] == [f"fields.{n}" for n in shop.RULES]
        live = by_path(list(reader))
    for path, row in live.items():
        want = shop.expected(path)
        assert row["fields.title"] == (want["title"] or ""), path
        assert row["fields.price"] == (want["price"] or ""), path
        assert (json.loads(row["fields.links"]) if row["fields.links"] else None) == want["links"]
        if shop.ENCODINGS[path] is not None:
            assert row["encoding"] == shop.ENCODINGS[path], path

    # Exported from the store afterwards: JSONL (a fields object), Parquet (a struct) and
    # CSV again, its columns in the order of the rules the job recorded.
    for output in ("out.jsonl", "out.parquet", "out.csv"):
        done = shoal("export", "--job", "urls", "-o", output, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as file:
        assert next(csv.reader(file)) == list(reader.fieldnames)
    jsonl = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    check_fields(by_path(jsonl), shop.PAGES)
    table = pq.read_table(tmp_path / "out.parquet")
    struct = table.schema.field("fields").type
    assert [struct.field(i).name for i in range(struct.num_fields)] == [*shop.RULES, "noindex"]
    parquet = by_path(table.to_pylist())
    assert parquet["item/2"]["fields"]["links"] == ["/shop/", "/shop/item/3"]
    assert parquet["api/items"]["fields"]["ids"] == ["7", "8"]  # JSON values as JSON text
    assert parquet["latin1"]["fields"]["title"] == "Crème brûlée"
    assert parquet["latin1"]["encoding"] == "cp1252"


def test_crawl_takes_rules_from_the_toml_job_file(site: TestWeb, tmp_path: Path) -> None:
    rules = "".join(f"{name} = {json.dumps(rule)}\n" for name, rule in shop.RULES.items())
    (tmp_path / "job.toml").write_text(f"concurrency = 8\n\n[extract]\n{rules}")
    done = shoal(
        "--config",
        "job.toml",
        "crawl",
        site.url(0, "/shop/"),
        "--quiet",
        "--ignore-robots",
        "-o",
        "crawl.jsonl",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "crawl.jsonl").read_text().splitlines()]
    check_fields(by_path(rows), shop.PAGES)


def test_rules_from_the_environment_one_per_line(site: TestWeb, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(site.url(0, "/shop/item/1") + "\n")
    env = {"SHOAL_EXTRACT": "title=css:title::text\nprice=css:.price::text"}
    done = shoal("fetch", str(urls), "--quiet", "-o", "-", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["fields"] == {"title": shop.item_title(1), "price": shop.item_price(1)}


@pytest.mark.parametrize(
    ("args", "quoted"),
    [
        (["--extract", "price=css:.price::txt"], "'price=css:.price::txt'"),
        (["--extract", "price css:.price"], "'price css:.price'"),
        (["--extract", "a=css:a", "--extract", "a=css:b"], "'a=css:b'"),
    ],
)
def test_a_bad_rule_is_a_usage_error_quoting_it_before_anything_is_fetched(
    site: TestWeb, tmp_path: Path, args: list[str], quoted: str
) -> None:
    site.reset_stats()
    urls = tmp_path / "urls.txt"
    urls.write_text(site.url(0, "/shop/") + "\n")
    done = shoal("fetch", str(urls), "--quiet", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert quoted in done.stderr
    assert "Traceback" not in done.stderr
    assert sum(h.requests for h in site.stats().hosts) == 0


def test_a_bad_rule_in_the_toml_file_is_a_usage_error(site: TestWeb, tmp_path: Path) -> None:
    (tmp_path / "job.toml").write_text('[extract]\nprice = "css:.price::txt"\n')
    done = shoal("--config", "job.toml", "crawl", site.url(0, "/shop/"), "--quiet", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "'price=css:.price::txt'" in done.stderr
    (tmp_path / "job.toml").write_text("[extract]\nprice = 3\n")
    done = shoal("--config", "job.toml", "crawl", site.url(0, "/shop/"), "--quiet", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "[extract] price must be a string rule" in done.stderr
