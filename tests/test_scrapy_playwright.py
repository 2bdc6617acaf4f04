"""The watch against a real scraping library: scrapy-playwright, on loopback pages.

scrapy-playwright drives Playwright's async API from Scrapy's download handler.
Its documentation says that a request may name its own context with the
``playwright_context`` meta key, that such contexts stay open until the crawl
ends unless the spider closes them (``await page.context.close()``), and that
``PLAYWRIGHT_MAX_CONTEXTS`` bounds how many are open at once. A spider that
opens one context per request and closes none piles up contexts for the whole
crawl: the failure this plugin exists to catch. The correct use closes the
page and its context in the callback, under ``PLAYWRIGHT_MAX_CONTEXTS``.

Each crawl runs in its own pytest process, because Twisted's reactor cannot be
started twice in one process.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Playwright

from pytest_ctxleak.launch import launch_options

pytest.importorskip("scrapy_playwright")

CRAWL_CONFTEST = """
import http.server
import json
import threading

import pytest
import scrapy
from scrapy.crawler import CrawlerProcess

LAUNCH_OPTIONS = json.loads({launch!r})


class Shop(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"<html><head><title>{{self.path}}</title></head></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def shop():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{{server.server_port}}"
    server.shutdown()


class ProductSpider(scrapy.Spider):
    name = "products"
    pages = 8
    titles = []

    def __init__(self, shop, **kwargs):
        super().__init__(**kwargs)
        self.shop = shop

    async def start(self):
        for number in range(self.pages):
            # One context per product, as for one proxy or one login per request.
            yield scrapy.Request(
                f"{{self.shop}}/product-{{number}}",
                meta={{
                    "playwright": True,
                    "playwright_context": f"product-{{number}}",
                    "playwright_include_page": True,
                }},
            )


def crawl(spider, shop, **settings):
    process = CrawlerProcess(
        settings={{
            "DOWNLOAD_HANDLERS": {{
                "http": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
            }},
            "TWISTED_REACTOR": (
                "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
            ),
            "PLAYWRIGHT_LAUNCH_OPTIONS": LAUNCH_OPTIONS,
            "TELNETCONSOLE_ENABLED": False,
            "ROBOTSTXT_OBEY": False,
            "LOG_LEVEL": "WARNING",
            **settings,
        }}
    )
    process.crawl(spider, shop=shop)
    process.start()
    return spider.titles
"""


@pytest.fixture
def crawl_setup(pytester: pytest.Pytester, ctxleak_playwright: Playwright) -> None:
    """Write the crawl helpers, with scrapy-playwright launching the Chromium found here."""
    options = launch_options(ctxleak_playwright.chromium.executable_path)
    launch = json.dumps({key: value for key, value in options.items() if value})
    pytester.makeconftest(CRAWL_CONFTEST.format(launch=launch))


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", "-p", "no:playwright", *args)


@pytest.mark.usefixtures("crawl_setup")
def test_context_per_request_never_closed_exceeds_cap(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_crawl="""
        import pytest
        from conftest import ProductSpider, crawl

        class ForgetfulSpider(ProductSpider):
            async def parse(self, response):
                page = response.meta["playwright_page"]
                self.titles.append(await page.title())

        @pytest.mark.ctxleak(max_contexts=4)
        def test_products(shop):
            titles = crawl(ForgetfulSpider, shop)
            assert len(titles) == ForgetfulSpider.pages
        """
    )
    result = run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_products*",
            "ctxleak: the test held 8 contexts at once, above the cap of 4; the "
            "context creation that reached the peak was at "
            "scrapy_playwright/handler.py:* in _create_browser_context",
            "  created at:",
            "    scrapy_playwright/handler.py:* in _create_browser_context",
            "        context = await self.browser.new_context(**context_kwargs)",
        ]
    )


@pytest.mark.usefixtures("crawl_setup")
def test_contexts_closed_in_callback_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_crawl="""
        import pytest
        from conftest import ProductSpider, crawl

        class TidySpider(ProductSpider):
            async def parse(self, response):
                page = response.meta["playwright_page"]
                self.titles.append(await page.title())
                await page.close()
                await page.context.close()

        @pytest.mark.ctxleak(max_contexts=4)
        def test_products(shop):
            titles = crawl(TidySpider, shop, PLAYWRIGHT_MAX_CONTEXTS=4)
            assert sorted(titles) == [f"/product-{n}" for n in range(8)]
        """
    )
    result = run(pytester)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    assert "ctxleak:" not in result.stdout.str()
