"""Headless Chromium (Debian's package, driven by playwright's sync API) serving one
page that loads the bundle with a plain ``import()``.

Everything here runs in one worker thread (playwright's sync API stays on the thread
that started it); trio tests call :func:`run_in_browser` through ``trio.to_thread``.
The flags keep Chromium on loopback (../shared notes: no look-ups of outside hosts, no
mDNS, no background traffic) and give it a fresh profile each time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from taiinet.cli.static_http import Route, serve_static
from tests.browser.support import BUNDLE, CHROMIUM

T = TypeVar("T")
HERE = Path(__file__).resolve().parent

# Chromium honours only the last --disable-features switch, and playwright passes its
# own first: this one repeats the playwright entries that stop outside traffic and adds
# WebRtcHideLocalIpsWithMdns (no mDNS multicast, plain host candidates).
DISABLED_FEATURES = ",".join([
    "WebRtcHideLocalIpsWithMdns", "OptimizationHints", "NetworkTimeServiceQuerying", "AimEnabled",
    "PreconnectToSearch", "MediaRouter", "HttpsUpgrades", "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay", "DestroyProfileOnBrowserClose", "AvoidUnnecessaryBeforeUnloadCheckSync",
])
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    f"--disable-features={DISABLED_FEATURES}",
]

PAGE = b"""<!doctype html><meta charset="utf-8"><title>TaiiNet test page</title>
<script type="module">
window.taiinet = await import("/taiinet.js");
window.harness = await import("/harness.js");
document.title = "ready";
</script>"""


#: The test page and what it imports, by path.
ROUTES: dict[str, Route] = {
    "/": ("text/html", lambda: PAGE),
    "/taiinet.js": ("text/javascript", BUNDLE.read_bytes),
    "/harness.js": ("text/javascript", (HERE / "harness.js").read_bytes),
}


def page_server() -> AbstractContextManager[str]:
    """An HTTP server on 127.0.0.1 for the test page; yields its URL."""
    return serve_static(ROUTES)


@contextmanager
def pages_at(url: str, count: int) -> Iterator[list[Any]]:
    """``count`` pages (tabs) of one headless Chromium, each opened at ``url``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            pages = [context.new_page() for _ in range(count)]
            for page in pages:
                page.goto(url)
            yield pages
        finally:
            context.close()


@contextmanager
def browser_pages(count: int = 1) -> Iterator[list[Any]]:
    """``count`` pages of one headless Chromium, each on the test page, bundle loaded."""
    with page_server() as url, pages_at(url, count) as pages:
        for page in pages:
            page.wait_for_function("document.title === 'ready'", timeout=15_000)
        yield pages


def run_in_browser(body: Callable[[list[Any]], T], pages: int = 1) -> T:
    """Open Chromium with ``pages`` pages, run ``body(pages)``, close it (one thread)."""
    with browser_pages(pages) as opened:
        return body(opened)
