"""Real headless Chromium for the HTML report's test, driven over the DevTools protocol on a pipe.

``--remote-debugging-pipe``: Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and
events on fd 4, so no port, no websocket library and no extra Python package. One page load gives
everything the test asserts on: uncaught exceptions and console errors (Runtime.*), the browser's own
error log (failed loads, CSP refusals: Log.entryAdded), every request (Network.*), the DOM's table cells
and image sizes after decoding (Runtime.evaluate) and a full-page screenshot (Page.captureScreenshot).

Without a browser that starts, the tests skip with a message; with MTL_REQUIRE_BROWSER=1 (CI) they fail.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import conftest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = "scripts/setup_browser.sh (apt-get install -y chromium)"

# Runs in the page after load: waits for every image to decode, then reads what the test checks.
PROBE = """(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().then(() => true, () => false)));
  const grid = t => [...t.rows].map(r => [...r.cells].map(c => c.textContent));
  return {
    images: imgs.map(i => ({src: i.currentSrc.slice(0, 40), complete: i.complete,
                            width: i.naturalWidth, height: i.naturalHeight})),
    tables: [...document.querySelectorAll('table.results')].map(grid),
    shown: [...document.querySelectorAll('table, img')].every(e => e.offsetWidth > 0 && e.offsetHeight > 0),
    problems: [...document.querySelectorAll('table.problems')].map(grid),
    text: document.body.textContent,
    elements: document.querySelectorAll('*').length,
  };
})()"""


class BrowserError(RuntimeError):
    """The browser did not start, died, or did not answer in time."""


def skip_or_fail(reason: str) -> None:
    conftest.skip_or_fail(f"BROWSER TEST NOT RUN: {reason}; install it with {INSTALL}", "MTL_REQUIRE_BROWSER")


def find_browser() -> str | None:
    """MTL_BROWSER, else the first Chromium on PATH."""
    given = os.environ.get("MTL_BROWSER")
    if given:
        return shutil.which(given)
    return next((p for p in map(shutil.which, NAMES) if p), None)


@dataclass
class PageCheck:
    """What one page load showed."""

    errors: list[str] = field(default_factory=list)       # exceptions, console.error/assert, error log lines
    requests: list[str] = field(default_factory=list)     # every URL the page asked for (first 200 chars)
    probe: dict[str, Any] = field(default_factory=dict)   # PROBE's result
    screenshot: bytes = b""


TRAMPOLINE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
              "os.execv(sys.argv[3], sys.argv[3:])")


def _high(fd: int) -> int:
    """The fd moved to >= 10, so the shell's redirections onto 3 and 4 cannot clobber the other pipe end."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    """One headless Chromium process; ``check(path)`` loads a page in a fresh tab and reports on it."""

    def __init__(self, exe: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="mtl-chromium-")
        cmd_r, self._cmd_w = map(_high, os.pipe())
        self._resp_r, resp_w = map(_high, os.pipe())
        args = [exe, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--mute-audio", "--hide-scrollbars", "--window-size=1280,900",
                *(["--no-sandbox"] if os.geteuid() == 0 else [])]
        # the protocol's fixed descriptors: commands in on 3, replies out on 4 (a tiny exec trampoline moves
        # our pipe ends there; dash cannot redirect descriptors above 9)
        self.proc = subprocess.Popen([sys.executable, "-c", TRAMPOLINE, str(cmd_r), str(resp_w), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     pass_fds=(cmd_r, resp_w))
        os.close(cmd_r)
        os.close(resp_w)
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        self._err_reader = threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr or []), daemon=True)
        self._err_reader.start()
        self._id = 0
        self.events: list[dict[str, Any]] = []
        try:
            self.version = self.call("Browser.getVersion")["product"]
        except BrowserError:
            self.close()
            raise

    # -- protocol ---------------------------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._resp_r, 1 << 16)
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for m in messages:
                self._inbox.put(json.loads(m))

    def _died(self, what: str) -> BrowserError:
        try:
            self.proc.wait(timeout=2)
            self._err_reader.join(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        tail = b"".join(self._stderr).decode(errors="replace").strip().splitlines()[-5:]
        return BrowserError(f"{what} (exit code {self.proc.poll()}; stderr: {' | '.join(tail) or 'empty'})")

    def _next(self, deadline: float) -> dict[str, Any]:
        try:
            msg = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise self._died(f"no answer from the browser within {self.timeout:.0f} s") from None
        if msg is None:
            raise self._died("the browser closed its DevTools pipe")
        return msg

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its reply; events that arrive meanwhile go to ``self.events``."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        except OSError as e:
            raise self._died(f"cannot write to the browser ({e})") from None
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        for e in self.events:
            if e.get("method") == method and e.get("sessionId") == session:
                return e
        while True:
            e = self._next(deadline)
            self.events.append(e)
            if e.get("method") == method and e.get("sessionId") == session:
                return e

    def drain(self, seconds: float) -> None:
        """Collect the events of the next ``seconds`` (late console messages)."""
        end = time.monotonic() + seconds
        while True:
            try:
                msg = self._inbox.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                return
            if msg is None:
                raise self._died("the browser closed its DevTools pipe")
            self.events.append(msg)

    # -- one page ---------------------------------------------------------------------------------------
    def check(self, page: Path, screenshot: bool = True) -> PageCheck:
        """Open ``page`` (a file) in a new tab: its errors, requests, PROBE and a full-page screenshot."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", {}, session)
        start = len(self.events)
        nav = self.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
        if nav.get("errorText"):
            raise BrowserError(f"cannot open {page}: {nav['errorText']}")
        self.wait_event("Page.loadEventFired", session)
        probe = self.call("Runtime.evaluate", {"expression": PROBE, "awaitPromise": True, "returnByValue": True},
                          session)
        if "exceptionDetails" in probe:
            raise BrowserError(f"the probe script failed: {probe['exceptionDetails']}")
        shot = b""
        if screenshot:
            size = self.call("Page.getLayoutMetrics", {}, session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                                         "captureBeyondViewport": True},
                                              session)["data"])
        self.drain(0.3)
        events = [e for e in self.events[start:] if e.get("sessionId") == session]
        self.call("Target.closeTarget", {"targetId": target})
        return PageCheck(_errors(events), [e["params"]["request"]["url"][:200] for e in events
                                           if e.get("method") == "Network.requestWillBeSent"],
                         probe["result"]["value"], shot)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("Browser.close")
            except BrowserError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._cmd_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    """Every sign of a broken page among one tab's events, as readable lines."""
    out = []
    urls = {}
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"uncaught exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            out.append(f"console.{p['type']}: {text}")
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.append(f"log ({p['entry'].get('source')}): {p['entry']['text']} {p['entry'].get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            urls[p["requestId"]] = p["request"]["url"][:200]
        elif method == "Network.loadingFailed":
            out.append(f"load failed: {urls.get(p['requestId'], '?')}: {p.get('errorText')} "
                       f"{p.get('blockedReason', '')}".strip())
    return out
