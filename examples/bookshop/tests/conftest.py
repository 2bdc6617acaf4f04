"""Fixtures of the bookshop example: the site on a local server, and the scraper."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SITE_DIR = Path(__file__).resolve().parent.parent / "site"
SCRAPER_MODULES = {
    "fixed": "bookshop_scraper.scraper",
    "leaky": "bookshop_scraper.leaky_scraper",
}

logger = logging.getLogger("bookshop_site")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--scraper",
        choices=sorted(SCRAPER_MODULES),
        default="fixed",
        help="The scraper version under test: 'fixed' (bookshop_scraper.scraper, "
        "the default) or 'leaky' (bookshop_scraper.leaky_scraper).",
    )


class SiteRequestHandler(SimpleHTTPRequestHandler):
    """Serves the site's files and logs requests instead of printing them."""

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    """The URL of the example site, served from 127.0.0.1 on a free port."""
    handler = partial(SiteRequestHandler, directory=str(SITE_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, name="bookshop-site", daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def scraper(pytestconfig: pytest.Config) -> ModuleType:
    """The scraper module that --scraper selects."""
    return importlib.import_module(SCRAPER_MODULES[pytestconfig.getoption("scraper")])
