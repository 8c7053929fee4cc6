"""``taiinet demo --browser`` in headless Chromium: two tabs of the demo page join the
demo's mesh (through its TURN relay), show neighbours and the Python peers' documents;
a document published from one tab reaches the other tab and the demo's Python
subscriber; a query typed in a tab's box filters its table; SIGINT stops everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import Any

import pytest
import trio

from tests.browser.chromium import pages_at
from tests.browser.support import CHROMIUM, TURNSERVER, build_bundle, require
from tests.cli_support import TAIINET, Proc

ROWS = "[...document.querySelectorAll('#documents tr')]"
HAS_ROW = f"t => {ROWS}.some(r => r.dataset.document.includes(t))"
TIMEOUT_MS = 60_000


def rows(page: Any) -> list[dict[str, Any]]:
    texts = page.evaluate(f"() => {ROWS}.map(r => r.dataset.document)")
    return [json.loads(text) for text in texts]


def publish(page: Any, document: dict[str, Any]) -> None:
    page.fill("#document", json.dumps(document))
    page.click("#publish")


def two_tabs(pages: list[Any], token: str) -> dict[str, Any]:
    a, b = pages
    for page in pages:
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=TIMEOUT_MS)
    for page in pages:  # neighbours, and the Python peers' trickle in the table
        page.wait_for_function("document.querySelectorAll('#neighbors li').length >= 1",
                               timeout=TIMEOUT_MS)
        page.wait_for_function(f"{ROWS}.length >= 1", timeout=TIMEOUT_MS)
    publish(a, {"from": "tab", "token": token})
    b.wait_for_function(HAS_ROW, arg=token, timeout=TIMEOUT_MS)

    b.fill("#query", json.dumps({"from": "tab"}))
    b.click("#subscribe")
    b.wait_for_function("document.body.dataset.query === '{\"from\":\"tab\"}'")
    seen_by_a = int(a.inner_text("#doc-count"))
    publish(a, {"from": "tab", "token": token + "-filtered"})
    b.wait_for_function(HAS_ROW, arg=token + "-filtered", timeout=TIMEOUT_MS)
    # Python documents keep arriving at tab A (query {}) after B changed its query...
    a.wait_for_function("n => Number(document.getElementById('doc-count').textContent) >= n",
                        arg=seen_by_a + 4, timeout=TIMEOUT_MS)
    return {"a": rows(a), "b": rows(b),
            "neighbors": [page.evaluate("() => [...document.querySelectorAll('#neighbors li')]"
                                        ".map(li => li.dataset.peer)") for page in pages],
            "errors": [page.inner_text("#error") for page in pages]}


async def test_demo_page_with_two_tabs() -> None:
    require(CHROMIUM, "Debian's chromium")
    require(TURNSERVER, "coturn (turnserver)")
    build_bundle()
    token = f"token-{os.getpid()}"
    process = await trio.lowlevel.open_process(
        [*TAIINET, "demo", "--browser", "--http-port", "0", "--interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    demo = Proc(process)
    try:
        with trio.fail_after(180):
            assert "a TURN relay on turn:127.0.0.1:" in await demo.line()
            url = (await demo.line_containing("open http://127.0.0.1:")).split()[1]
            result = await trio.to_thread.run_sync(_in_browser, url, token)
            got = await demo.line_containing(token)
            assert got.startswith("python peer ") and '"from": "tab"' in got, got
            demo.interrupt()
            code, out, err = await demo.finish()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await process.wait()
    assert all(result["neighbors"]), result["neighbors"]
    assert result["errors"] == ["", ""]
    assert any(d.get("from") == "python" for d in result["a"])
    assert any(d.get("from") == "python" for d in result["b"]) is False, result["b"]
    assert [d["token"] for d in result["b"]] == [token + "-filtered"], result["b"]
    assert (code, out.splitlines()[-2:]) == (0, ["stopping", "stopped"]), (code, out, err)
    with pytest.raises(ProcessLookupError):  # the relay and every other child are gone
        os.killpg(process.pid, 0)


def _in_browser(url: str, token: str) -> dict[str, Any]:
    with pages_at(url, 2) as pages:
        return two_tabs(pages, token)
