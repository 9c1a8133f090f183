"""The web page in a real browser: Playwright (PyPI) driving Debian's Chromium against a live
host on local storage, with real IFC models. Each test writes screenshots into
``test-artifacts/`` (gitignored). Without ``/usr/bin/chromium`` the tests skip, unless
``AECFLOW_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which makes them fail.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aecflow.actor import Role
from aecflow.ids import uuid7
from aecflow.store.schema import outbox
from aecflow.testing.live import LiveHost

from .conftest import ROOT, SAMPLES, make_settings
from .live import live_host

CHROMIUM = Path(os.environ.get("AECFLOW_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"
FZK = SAMPLES / "AC20-FZK-Haus.ifc"
HOUSE = SAMPLES / "IfcOpenHouse_IFC4.ifc"
TIMEOUT_MS = 120_000


def _need_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("playwright is not installed (dev dependency)")
    if not FZK.exists():
        missing.append(f"no sample model at {FZK}")
    if missing:
        if os.environ.get("AECFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail("AECFLOW_REQUIRE_BROWSER=1 but " + "; ".join(missing))
        pytest.skip("; ".join(missing))


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _need_browser()
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def host(tmp_path: Path, database_url: str) -> AsyncIterator[LiveHost]:
    settings = make_settings(
        tmp_path, database_url, worker={"embedded": True, "poll_interval_s": 0.05}
    )
    async with live_host(settings) as live:
        yield live


async def _page(browser: Any, host: LiveHost) -> tuple[Any, list[str]]:
    """A fresh page (its own sessionStorage) that records console errors: a CSP violation
    or a script error shows up there."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []

    def console(msg: Any) -> None:
        # Refused requests are checked by their responses below, with their URLs.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def response(answer: Any) -> None:
        path = answer.url.removeprefix(host.url)
        if answer.status >= 400 and path != "/v1/tus/":  # the page asks whether tus is there
            errors.append(f"{answer.status} {answer.request.method} {path}")

    page.on("console", console)
    page.on("response", response)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(host.url + "/")
    return page, errors


async def _sign_in(page: Any, token: str) -> None:
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def _shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


async def test_sign_in_upload_search_summary_delete_and_restore(
    browser: Any, host: LiveHost
) -> None:
    from playwright.async_api import expect

    _, token = await host.flow.create_token(name="alice", role=Role.WRITER, projects=["fzk"])
    page, errors = await _page(browser, host)
    await _shot(page, "sign-in")
    await _sign_in(page, token)
    # One project: straight to it.
    await page.get_by_role("heading", name="Project fzk").wait_for()
    assert token not in page.url
    assert await page.evaluate("sessionStorage.getItem('aecflow.token')") == token
    assert "alice" in await page.locator("#who-text").inner_text()
    # The host speaks tus (/v1/tus/): Uppy's Tus plugin sends the files, resumably.
    await page.locator("#upload-protocol", has_text="resumable (tus)").wait_for()

    # Progress as Uppy reports it, recorded while it happens.
    await page.evaluate(
        """() => { window.seen = [];
        new MutationObserver(() => document.querySelectorAll('#uploads .state')
            .forEach((s) => window.seen.push(s.textContent)))
          .observe(document.querySelector('#uploads'),
                   {subtree: true, childList: true, characterData: true}); }"""
    )
    await page.set_input_files("#file-input", [str(FZK), str(HOUSE)])
    done = page.locator("#uploads li .state a", has_text="uploaded")
    await done.nth(1).wait_for()
    assert await page.locator("#uploads progress").evaluate_all(
        "bars => bars.map((b) => b.value)"
    ) == [100, 100]
    seen = await page.evaluate("window.seen")
    assert any("% of" in text for text in seen), seen
    await page.locator("#file-rows tr").nth(1).wait_for()
    await _shot(page, "uploaded")

    await page.get_by_label("Search").fill("Haus")
    await page.locator("#file-rows tr", has_text=FZK.name).wait_for()
    await expect(page.locator("#file-rows tr")).to_have_count(1)
    await _shot(page, "search")

    await page.get_by_role("link", name=FZK.name).click()
    await page.get_by_role("heading", name=FZK.name).wait_for()
    # The page polls until the worker is done, then shows the summary.
    await page.locator("#file-status .badge", has_text="processed").wait_for()
    await page.locator("#element-chart rect").first.wait_for()
    bars = await page.locator("#element-chart rect").count()
    assert bars >= 5
    assert await page.locator("#storeys li").count() == 2
    assert await page.locator("#materials tbody tr").count() > 0
    assert await page.locator("#quantities tbody tr").count() > 0
    headline = await page.locator("#headline").inner_text()
    assert "IFC4" in headline and "44,249" in headline
    await _shot(page, "file-processed")

    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download").click()
    download = await download_info.value
    saved = ARTIFACTS / "downloaded.ifc"
    await download.save_as(saved)
    assert saved.read_bytes() == FZK.read_bytes()
    saved.unlink()

    await page.get_by_role("button", name="Delete").click()
    await page.locator("#file-status .badge", has_text="deleted").wait_for()
    assert await page.evaluate("document.activeElement.id") == "restore"
    await _shot(page, "file-deleted")
    await page.get_by_role("button", name="Restore").click()
    await page.locator("#file-status .badge", has_text="processed").wait_for()
    await _shot(page, "file-restored")
    assert errors == []


async def test_a_wrong_token_says_so_clearly(browser: Any, host: LiveHost) -> None:
    page, errors = await _page(browser, host)
    await _sign_in(page, "aecf_not-a-real-token")
    alert = page.get_by_role("alert")
    await alert.wait_for()
    text = await alert.inner_text()
    assert "That token was not accepted" in text and "invalid_token" in text
    assert await page.get_by_label("API token").get_attribute("aria-invalid") == "true"
    assert await page.evaluate("sessionStorage.getItem('aecflow.token')") is None
    await _shot(page, "wrong-token")
    assert errors == ["401 GET /v1/me"]


async def test_an_admin_sees_dead_letters_and_redelivers_one(browser: Any, host: LiveHost) -> None:
    _, token = await host.flow.create_token(name="ops", role=Role.ADMIN, projects=["*"])
    dead_id = uuid7()
    now = dt.datetime.now(dt.UTC)
    async with host.flow.engine.begin() as conn:
        await conn.execute(
            sa.insert(outbox).values(
                id=dead_id,
                event_id=uuid7(),
                destination="log",
                event_type="file.processed",
                project="fzk",
                file_id=None,
                payload={"type": "file.processed"},
                status="dead",
                attempts=10,
                available_at=now,
                last_error="connection refused",
                created_at=now,
            )
        )
    page, errors = await _page(browser, host)
    await _sign_in(page, token)
    await page.get_by_role("heading", name="Projects").wait_for()
    await page.get_by_role("link", name="Dead letters").click()
    row = page.locator("#dead-rows tr", has_text="file.processed")
    await row.wait_for()
    assert "connection refused" in await row.inner_text()
    await _shot(page, "dead-letters")
    await row.get_by_role("button", name="Redeliver file.processed to log").click()
    await row.get_by_text("queued again").wait_for()
    await _shot(page, "dead-letter-redelivered")
    page_after = await host.flow.dead_letters(limit=50)
    assert dead_id not in [item["id"] for item in page_after["items"]]
    assert errors == []
