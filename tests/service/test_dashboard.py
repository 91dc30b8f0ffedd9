"""The dashboard in a real browser (Debian's Chromium through Playwright) against a real
``shoal serve``: a crawl started from the form runs to finished with the API's numbers,
pause and resume, failures with their kind, hostile titles shown as text, a restart
ridden out, the token flow, and screenshots at two widths."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from shoal.testweb import SiteSpec, TestWeb

from .served import Served, client, shoal_serve

ARTIFACTS = Path(os.environ.get("SHOAL_ARTIFACTS", "test-artifacts"))
HOSTILE_TITLE = "<img src=x onerror=alert(1)>"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed (make test installs it: apt-get install chromium)"
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def open_page(browser: Browser, served: Served, width: int = 1280) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    await page.goto(served.url + "/")
    return page, problems


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def api_job(served: Served, name: str, token: str | None = None) -> dict[str, Any]:
    async with client(served, token) as http:
        response = await http.get(f"/jobs/{name}")
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        return job


async def screenshot(page: Page, name: str) -> None:
    await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_a_crawl_started_from_the_form_runs_to_finished_with_the_apis_numbers(
    browser: Browser, tmp_path: Path
) -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=60, latency_ms=5)) as site:
        async with shoal_serve(str(tmp_path / "s.db"), "--allow-private") as served:
            page, problems = await open_page(browser, served)
            await page.get_by_role("link", name="New job").click()
            await page.get_by_label("Name").fill("from-form")
            await page.get_by_label("Seed URLs (one per line)").fill(site.url(0, "/"))
            await page.get_by_label("Requests in flight per host").fill("2")
            await screenshot(page, "new-job-1280")
            await page.get_by_role("button", name="Start job").click()
            await expect(page.get_by_role("heading", name="Job from-form")).to_be_visible()
            await expect(page.locator('[data-stat="state"]')).to_have_text(
                "finished", timeout=120_000
            )
            job = await api_job(served, "from-form")
            assert job["state"] == "finished"
            counts = job["counts"]
            await expect(page.locator('[data-stat="done"]')).to_have_text(f"{counts['done']:,}")
            await expect(page.locator('[data-stat="total"]')).to_have_text(f"{counts['total']:,}")
            assert counts["done"] + counts["failed"] == counts["total"] > 10
            await screenshot(page, "job-1280")
            await page.get_by_role("link", name="Jobs", exact=True).click()
            row = page.locator('tr[data-job="from-form"]')
            await expect(row.locator('[data-field="state"]')).to_have_text("finished")
            await screenshot(page, "jobs-1280")
            narrow = await browser.new_page(viewport={"width": 390, "height": 844})
            await narrow.goto(served.url + "/")
            await expect(narrow.locator('tr[data-job="from-form"]')).to_be_visible()
            await screenshot(narrow, "jobs-390")
            await narrow.goto(served.url + "/#/jobs/from-form")
            await expect(narrow.locator('[data-stat="state"]')).to_have_text("finished")
            await screenshot(narrow, "job-390")
            assert problems == []


async def test_pause_stops_fetching_and_resume_finishes(browser: Browser, tmp_path: Path) -> None:
    async with TestWeb(SiteSpec(hosts=1, pages=400, latency_ms=20)) as site:
        async with shoal_serve(str(tmp_path / "s.db"), "--allow-private") as served:
            async with client(served) as http:
                created = await http.post(
                    "/jobs",
                    json={
                        "name": "slow",
                        "kind": "crawl",
                        "seeds": [site.url(0, "/")],
                        "per_host": 1,
                        "delay": 0.05,
                    },
                )
                assert created.status_code == 201, created.text
            page, problems = await open_page(browser, served)
            await page.goto(served.url + "/#/jobs/slow")
            await expect(page.get_by_role("button", name="Pause")).to_be_visible()
            await page.get_by_role("button", name="Pause").click()
            await expect(page.locator('[data-stat="state"]')).to_have_text("paused", timeout=60_000)
            seen = site.stats().hosts[0].requests
            await asyncio.sleep(1.0)  # a paused job must not fetch: nothing may arrive meanwhile
            assert site.stats().hosts[0].requests == seen
            await page.get_by_role("button", name="Resume").click()
            await expect(page.locator('[data-stat="state"]')).to_have_text(
                "finished", timeout=180_000
            )
            counts = (await api_job(served, "slow"))["counts"]
            assert counts["done"] + counts["failed"] == counts["total"] > seen
            assert problems == []


async def test_failures_are_listed_with_their_kind_and_hostile_titles_stay_text(
    browser: Browser, tmp_path: Path
) -> None:
    async def hostile(_request: web.Request) -> web.Response:
        body = f"<html><head><title>{HOSTILE_TITLE}</title></head><body>hi</body></html>"
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", hostile)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    dead = free_port()  # nothing listens there: connect_error
    try:
        async with shoal_serve(str(tmp_path / "s.db"), "--allow-private") as served:
            page, problems = await open_page(browser, served)
            await page.get_by_role("link", name="New job").click()
            await page.get_by_label("Name").fill("mixed")
            await page.get_by_label("Kind").select_option("fetch")
            await page.get_by_label("URLs to fetch (one per line)").fill(
                f"http://127.0.0.1:{port}/\nhttp://127.0.0.1:{dead}/gone"
            )
            await page.get_by_label("Extraction rules").fill("title=css:title::text")
            await page.get_by_label("Retries").fill("0")
            await page.get_by_role("button", name="Start job").click()
            await expect(page.locator('[data-stat="state"]')).to_have_text(
                "finished", timeout=120_000
            )
            failures = page.get_by_role("table", name="failures")
            await expect(failures).to_contain_text("connect_error")
            await expect(failures).to_contain_text(f"127.0.0.1:{dead}/gone")
            titles = page.get_by_role("table", name="results")
            await expect(titles).to_contain_text(HOSTILE_TITLE)
            assert await page.locator("img").count() == 0
            await page.get_by_label("Error kind").fill("connect_error")
            await page.get_by_role("button", name="Filter").click()
            await expect(failures.locator("tbody tr")).to_have_count(1)
            assert problems == []
    finally:
        await runner.cleanup()


async def test_a_restart_shows_disconnected_then_catches_up(
    browser: Browser, tmp_path: Path
) -> None:
    port = str(free_port())
    store = str(tmp_path / "s.db")
    async with TestWeb(SiteSpec(hosts=1, pages=30)) as site:
        async with shoal_serve(store, "--allow-private", "--port", port) as served:
            page, problems = await open_page(browser, served)
            await expect(page.locator("#connection")).to_have_text("live")
        await expect(page.locator("#connection")).to_contain_text("disconnected")
        async with shoal_serve(store, "--allow-private", "--port", port) as served:
            await expect(page.locator("#connection")).to_have_text("live", timeout=30_000)
            async with client(served) as http:
                created = await http.post(
                    "/jobs", json={"name": "after", "kind": "crawl", "seeds": [site.url(0, "/")]}
                )
                assert created.status_code == 201, created.text
            row = page.locator('tr[data-job="after"]')
            await expect(row.locator('[data-field="state"]')).to_have_text(
                "finished", timeout=120_000
            )
            assert problems == []


async def test_the_token_is_asked_once_and_kept_out_of_urls(
    browser: Browser, tmp_path: Path
) -> None:
    secret = "s3cret-token-for-the-dashboard"
    async with shoal_serve(
        str(tmp_path / "s.db"), "--allow-private", env={"SHOAL_TOKEN": secret}
    ) as served:
        async with client(served, secret) as http:
            created = await http.post(
                "/jobs",
                json={"name": "guarded", "kind": "fetch", "urls": [f"{served.url}/healthz"]},
            )
            assert created.status_code == 201, created.text
        page, problems = await open_page(browser, served)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        dialog = page.get_by_role("dialog", name="Access token")
        await expect(dialog).to_be_visible()
        await page.get_by_label("Token", exact=True).fill(secret)
        await page.get_by_role("button", name="Use token").click()
        await expect(page.locator('tr[data-job="guarded"]')).to_be_visible()
        await expect(page.locator("#connection")).to_have_text("live")
        stored = await page.evaluate("sessionStorage.getItem('shoal.token')")
        assert stored == secret
        assert await page.evaluate("localStorage.length") == 0
        assert all(secret not in url for url in requests + [page.url])
        assert problems == []
