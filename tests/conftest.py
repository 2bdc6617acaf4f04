"""Shared fixtures: a loopback HTTP site and small pools on the plugin's browser."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from pytest_ctxleak import ContextPool

PAGE = b"""<!doctype html><html><head><title>%s</title></head>
<body><h1>%s</h1><a href="/other">other</a></body></html>"""


class _SiteHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        name = self.path.strip("/") or "home"
        body = PAGE % (name.encode(), name.encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _inner_runs_in_file_order(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep pytest-randomly, from the test tools, out of pytester's inner runs.

    Inner runs state their tests in the order they depend on, such as a leak and
    then the test that must start clean. Pytester clears PYTEST_ADDOPTS when it
    starts, so the variable is set after it; tests/test_compat.py turns the
    plugin on where it is the subject.
    """
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
        monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    """Base URL of an HTTP server on 127.0.0.1 that serves a page for every path."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SiteHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def second_site() -> Iterator[str]:
    """A second loopback origin, for tests that need two origins."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SiteHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def pool(ctxleak_browser: Browser) -> Iterator[ContextPool]:
    """A pool of at most two contexts, closed after the test."""
    with ContextPool(ctxleak_browser, max_contexts=2, close_timeout=5.0) as pool:
        yield pool
