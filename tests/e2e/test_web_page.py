"""The gateway's web page in headless Chromium (Debian's, driven by Playwright) against
the running system: two corpus PDFs dropped on it, followed to their outcomes, then
a sentence of one searched for. A screenshot goes to .artifacts/e2e/web/.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from docflow_local.stack import Stack
from support.corpus import REPO_ROOT, expectations
from support.stacks import running_stack

# Debian's chromium (make chromium); Playwright cannot download its own here.
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / ".artifacts" / "e2e" / "web"
TEXT_PDF = "crazyones-pdfa.pdf"
SENTENCE = "They're not fond of rules. And they have no respect for the status quo."
ENCRYPTED = "libreoffice-writer-password.pdf"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("web") / "data",
        REPO_ROOT / ".artifacts" / "e2e" / "logs" / "web",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    # After the stack: Playwright's sync API keeps an event loop running in this
    # thread, and the stack's start needs one of its own (asyncio.run).
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: make chromium installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.goto(f"{stack.url('gateway')}/")
    yield opened
    opened.close()
    assert problems == [], "the page's script failed"


def drop_files(page: Page, names: list[str]) -> None:
    """Drop corpus files on the page as a person would drag them from a file manager."""
    paths = {e.path.name: e.path for e in expectations()}
    files = [[name, base64.b64encode(paths[name].read_bytes()).decode()] for name in names]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "application/pdf" }));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event("#drop", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def test_dropped_files_are_followed_live_and_found_by_search(page: Page) -> None:
    drop_files(page, [TEXT_PDF, ENCRYPTED])
    text = page.locator(".document", has_text=TEXT_PDF)
    failed = page.locator(".document", has_text=ENCRYPTED)

    expect(text).to_have_attribute("data-status", "completed", timeout=180_000)
    expect(text.locator(".message")).to_have_text("Indexed 2 chunks from 1 page")
    expect(text.locator(".fill")).to_have_attribute("style", "width: 100%;")

    expect(failed).to_have_attribute("data-status", "failed", timeout=120_000)
    expect(failed.locator(".message")).to_contain_text(
        "The file is protected by a password (while extracting): the PDF is protected by a "
        "password; upload a copy saved without one"
    )
    expect(failed.locator(".retry")).to_be_visible()

    page.fill("#query", SENTENCE)
    page.click("#search button")
    best = page.locator(".result").first
    expect(best.locator(".name")).to_have_text(TEXT_PDF)
    expect(best.locator(".text")).to_contain_text("status quo")
    expect(page.locator("#stream-state")).to_have_text("")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "page.png", full_page=True)


def test_a_file_the_gateway_refuses_says_why(page: Page) -> None:
    page.set_input_files(
        "#files", files=[{"name": "empty.pdf", "mimeType": "application/pdf", "buffer": b""}]
    )
    row = page.locator(".document", has_text="empty.pdf")
    expect(row).to_have_attribute("data-status", "refused")
    expect(row.locator(".message")).to_contain_text("The gateway refused the file:")
