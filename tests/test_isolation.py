"""Nothing crosses from one lease to the next: a table of probes.

Each probe plants one kind of state under a first lease of a pooled context, then
looks for it under a second lease of the same options. A probe also states how the
pool must get rid of the state: by resetting the context and reusing it, or by
recycling it (closing it and creating a new one), where no API can undo the change.
Everything is served by a loopback HTTP server that counts its hits.
"""

from __future__ import annotations

import collections
import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from pytest_ctxleak import ContextPool, Lease


class Site(NamedTuple):
    url: str
    hits: collections.Counter[str]


PAGE = b"<!doctype html><title>probe</title><h1>probe</h1>"
CACHED_PAGE = b'<!doctype html><title>cached</title><script src="/cached.js"></script>'
WORKER = b"self.addEventListener('fetch', () => {});"


class _ProbeHandler(http.server.BaseHTTPRequestHandler):
    hits: collections.Counter[str]

    def do_GET(self) -> None:
        self.hits[self.path] += 1
        headers = {"Content-Type": "text/html"}
        body = PAGE
        if self.path == "/cached.html":
            body = CACHED_PAGE
        elif self.path == "/cached.js":
            headers = {
                "Content-Type": "application/javascript",
                "Cache-Control": "public, max-age=3600",
            }
            body = b"window.cachedLoaded = true;"
        elif self.path == "/worker.js":
            headers = {"Content-Type": "application/javascript"}
            body = WORKER
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def probe_site() -> Iterator[Site]:
    hits: collections.Counter[str] = collections.Counter()
    handler = type("Handler", (_ProbeHandler,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(f"http://127.0.0.1:{server.server_port}", hits)
    server.shutdown()
    server.server_close()


Plant = Callable[[Lease, Page, Site], None]
Look = Callable[[Lease, Page, Site], Any]


class Probe(NamedTuple):
    """One kind of state: how to plant it, how to look for it, and what clean is."""

    name: str
    plant: Plant
    look: Look
    clean: Any
    reused: bool  # True: reset and reused; False: closed and replaced


def _plant_indexed_db(lease: Lease, page: Page, site: Site) -> None:
    page.evaluate(
        """new Promise(done => {
            const request = indexedDB.open('probe');
            request.onupgradeneeded = () => request.result.createObjectStore('s');
            request.onsuccess = () => { request.result.close(); done(true); };
        })"""
    )


def _load_cached(page: Page, site: Site) -> int:
    """Load a page whose script is cacheable; return the script's server hits."""
    before = site.hits["/cached.js"]
    page.goto(site.url + "/cached.html")
    page.wait_for_function("window.cachedLoaded === true")
    return site.hits["/cached.js"] - before  # 0 when served from the HTTP cache


def _plant_cache(lease: Lease, page: Page, site: Site) -> None:
    _load_cached(page, site)


def _look_cache(lease: Lease, page: Page, site: Site) -> int:
    return _load_cached(page, site)


def _plant_worker(lease: Lease, page: Page, site: Site) -> None:
    page.evaluate(
        "navigator.serviceWorker.register('/worker.js')"
        ".then(() => navigator.serviceWorker.ready).then(() => true)"
    )


def _plant_route(lease: Lease, page: Page, site: Site) -> None:
    lease.context.route("**/*", lambda route: route.fulfill(body="routed"))


def _look_page_text(lease: Lease, page: Page, site: Site) -> str:
    page.goto(site.url + "/again")
    return page.inner_text("body")


# URLs seen by a listener that the first holder added to the context.
_HEARD: list[str] = []


def _plant_listener(lease: Lease, page: Page, site: Site) -> None:
    _HEARD.clear()
    lease.context.on("request", lambda request: _HEARD.append(request.url))


def _look_listener(lease: Lease, page: Page, site: Site) -> list[str]:
    page.goto(site.url + "/listened")
    return [url for url in _HEARD if url.endswith("/listened")]


def _look_timeout(lease: Lease, page: Page, site: Site) -> str:
    # 200 ms is far below Playwright's default of 30 s, and far above the 1 ms a
    # previous holder set.
    try:
        page.wait_for_function("new Promise(done => setTimeout(() => done(1), 200))")
    except PlaywrightTimeoutError:
        return "timed out"
    return "waited"


PERMISSION_STATE = (
    "navigator.permissions.query({name: 'geolocation'}).then(r => r.state)"
)

PROBES = [
    Probe(
        "cookies",
        lambda lease, page, site: page.evaluate("document.cookie = 'sid=abc'"),
        lambda lease, page, site: lease.context.cookies(),
        [],
        reused=True,
    ),
    Probe(
        "localStorage",
        lambda lease, page, site: page.evaluate("localStorage.setItem('k', 'v')"),
        lambda lease, page, site: page.evaluate("localStorage.length"),
        0,
        reused=True,
    ),
    Probe(
        "sessionStorage",
        lambda lease, page, site: page.evaluate("sessionStorage.setItem('k', 'v')"),
        lambda lease, page, site: page.evaluate("sessionStorage.length"),
        0,
        reused=True,
    ),
    Probe(
        "IndexedDB",
        _plant_indexed_db,
        lambda lease, page, site: page.evaluate(
            "indexedDB.databases().then(found => found.length)"
        ),
        0,
        reused=True,
    ),
    Probe(
        "CacheStorage",
        lambda lease, page, site: page.evaluate(
            "caches.open('probe').then(cache => cache.put('/k', new Response('v')))"
        ),
        lambda lease, page, site: page.evaluate("caches.keys().then(k => k.length)"),
        0,
        reused=True,
    ),
    Probe(
        "granted permissions",
        lambda lease, page, site: lease.context.grant_permissions(
            ["geolocation"], origin=site.url
        ),
        lambda lease, page, site: page.evaluate(PERMISSION_STATE),
        "prompt",
        reused=True,
    ),
    Probe("HTTP cache", _plant_cache, _look_cache, 1, reused=True),
    Probe(
        "service workers",
        _plant_worker,
        lambda lease, page, site: page.evaluate(
            "navigator.serviceWorker.getRegistrations().then(r => r.length)"
        ),
        0,
        reused=True,
    ),
    Probe(
        "open pages",
        lambda lease, page, site: lease.context.new_page().goto(site.url),
        lambda lease, page, site: len(lease.context.pages),
        1,
        reused=True,
    ),
    Probe(
        "context routes",
        _plant_route,
        _look_page_text,
        "probe",
        reused=True,
    ),
    Probe(
        "init scripts",
        lambda lease, page, site: lease.context.add_init_script(
            "window.planted = 'yes'"
        ),
        lambda lease, page, site: page.evaluate("window.planted || null"),
        None,
        reused=False,
    ),
    Probe(
        "exposed functions",
        lambda lease, page, site: lease.context.expose_function(
            "planted", lambda: "planted"
        ),
        lambda lease, page, site: page.evaluate("typeof window.planted"),
        "undefined",
        reused=False,
    ),
    Probe(
        "fake clock",
        lambda lease, page, site: lease.context.clock.set_fixed_time(0),
        lambda lease, page, site: page.evaluate("Date.now() > 1e12"),
        True,
        reused=False,
    ),
    Probe(
        "event listeners",
        _plant_listener,
        _look_listener,
        [],
        reused=True,
    ),
    Probe(
        "default timeout",
        lambda lease, page, site: lease.context.set_default_timeout(1),
        _look_timeout,
        "waited",
        reused=True,
    ),
]


@pytest.mark.parametrize("probe", PROBES, ids=[probe.name for probe in PROBES])
def test_state_not_crossing_leases(
    pool: ContextPool, probe_site: Site, probe: Probe
) -> None:
    with pool.acquire() as lease:
        page = lease.new_page()
        page.goto(probe_site.url)
        probe.plant(lease, page, probe_site)
        first_context = lease.context
    with pool.acquire() as lease:
        page = lease.new_page()
        page.goto(probe_site.url)
        left_over = probe.look(lease, page, probe_site)
        reused = lease.context is first_context
    assert left_over == probe.clean
    assert reused == probe.reused
    pool.ledger.check_invariants()


def test_cache_clear_spares_other_contexts(
    pool: ContextPool, ctxleak_browser: Browser, probe_site: Site
) -> None:
    bystander = ctxleak_browser.new_context()
    try:
        page = bystander.new_page()
        assert _load_cached(page, probe_site) == 1
        with pool.acquire() as lease:
            _load_cached(lease.new_page(), probe_site)
        assert _load_cached(page, probe_site) == 0
    finally:
        bystander.close()


# -- secrets stay out of every output ----------------------------------------------


def test_secrets_absent_from_every_output(pytester: pytest.Pytester) -> None:
    # The secret comes from a file, so no source line that pytest prints contains it:
    # only the plugin's messages, reports and logs could show it.
    pytester.path.joinpath("secret.txt").write_text("hunter2-SECRET")
    pytester.makepyfile(
        test_secret_leaks="""
        import pathlib

        import pytest

        SECRET = pathlib.Path(__file__).with_name("secret.txt").read_text()
        OPTIONS = {
            "http_credentials": {"username": "bob", "password": SECRET},
            "proxy": {"server": "http://127.0.0.1:9", "password": SECRET},
            "extra_http_headers": {"Authorization": "Bearer " + SECRET},
            "storage_state": {
                "cookies": [
                    {"name": "sid", "value": SECRET, "domain": "127.0.0.1", "path": "/"}
                ],
                "origins": [],
            },
        }

        def test_leaks_lease(context_pool):
            context_pool.acquire(**OPTIONS)

        @pytest.mark.ctxleak(mode="warn")
        def test_warns_about_lease(context_pool):
            context_pool.acquire(**OPTIONS)

        def test_exhausts_pool(context_pool):
            with context_pool.acquire(**OPTIONS):
                context_pool.acquire(locale="de-DE")

        def test_leaks_outside_pool(ctxleak_browser):
            ctxleak_browser.new_context(**OPTIONS)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "ctxleak",
        "--ctxleak-max-contexts=1",
        "--junitxml=report.xml",
        "--log-level=DEBUG",
        "--log-file=run.log",
        "--log-file-level=DEBUG",
        "-o",
        "log_cli=true",
        "-vv",
        "-rA",
    )
    result.assert_outcomes(passed=3, failed=1, errors=2)
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "JUnit XML": (pytester.path / "report.xml").read_text(),
        "log file": (pytester.path / "run.log").read_text(),
    }
    for name, text in outputs.items():
        assert "hunter2" not in text, name
    assert "ctxleak: lease #" in outputs["stdout"]
    assert "pool exhausted" in outputs["stdout"]
