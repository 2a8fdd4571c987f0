"""Headless Chromium (Debian's) driven over the DevTools protocol: open a page, wait for its text,
take a screenshot. Enough to check that a UI renders its content, logged in where it needs a cookie.

No test-only dependency: the protocol's websocket goes through aiohttp (which MLflow needs anyway).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium calls Google's hosts, which this machine's closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def install_chromium() -> tuple[str | None, str]:
    """Debian's chromium, installed with apt-get where missing (root only); (path, why not)."""
    if found := find_chromium():
        return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "chromium is not installed and apt-get cannot install it here (not root, or no apt)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            return None, f"`{' '.join(args)}` failed: {(proc.stderr or proc.stdout)[-500:]}"
    found = find_chromium()
    return found, "" if found else "apt-get installed chromium, but no chromium is on PATH"


class Browser:
    """One headless Chromium with one tab; use as a context manager."""

    def __init__(self, executable: str, profile: Path, size: tuple[int, int] = (1400, 1000)) -> None:
        self.executable = executable
        self.profile = profile
        self.size = size
        self._ids = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None
        self._ws_url = ""

    def __enter__(self) -> Browser:
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Browser:
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)  # a previous browser's
        width, height = self.size
        self._process = subprocess.Popen(
            [
                self.executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit code {self._process.poll()})")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        self._ws_url = pages[0]["webSocketDebuggerUrl"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            # Chromium's helpers (zygote, GPU, network) are in its session: all of them go.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command on the tab; its result."""
        return asyncio.run(self._call(method, params))

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        import aiohttp

        message_id = next(self._ids)
        async with aiohttp.ClientSession() as session, session.ws_connect(self._ws_url, max_msg_size=0) as ws:
            await ws.send_json({"id": message_id, "method": method, "params": params})
            async for msg in ws:
                data = json.loads(msg.data)
                if data.get("id") == message_id:
                    if "error" in data:
                        raise RuntimeError(f"{method}: {data['error']}")
                    return data.get("result", {})
        raise RuntimeError(f"{method}: the connection closed without an answer")

    def set_cookie(self, url: str, name: str, value: str) -> None:
        self.call("Network.setCookie", url=url, name=name, value=value)

    def open(self, url: str, expect: Sequence[str], *, timeout_s: float = 60) -> str:
        """Go to ``url`` and wait until the page's text holds every string of ``expect``; the text.

        Raises:
            AssertionError: Naming what is missing and the start of the text the page has.
        """
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            time.sleep(1)
            result = self.call(
                "Runtime.evaluate",
                expression="document.body ? document.body.innerText : ''",
                returnByValue=True,
            )
            text = str(result.get("result", {}).get("value") or "")
            if all(e in text for e in expect):
                time.sleep(1)  # let late styles and icons settle before a screenshot
                return text
        missing = [e for e in expect if e not in text]
        shows = text[:1500]
        raise AssertionError(f"{url} did not show {missing} within {timeout_s:.0f}s; it shows: {shows!r}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
