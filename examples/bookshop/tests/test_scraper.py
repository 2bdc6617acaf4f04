"""Tests of the bookshop scraper against the example site.

Run with --scraper=leaky to see the ctxleak check fail the one test that scrapes a
malformed book page. Every assert here passes with either scraper.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from types import ModuleType

import pytest
from bookshop_scraper.books import Book, PageError, read_book
from playwright.sync_api import Page

from pytest_ctxleak import ContextPool


def test_scrape_category_reads_every_book(
    context_pool: ContextPool, scraper: ModuleType, site_url: str
) -> None:
    books = scraper.scrape_catalogue(context_pool, site_url + "category/travel.html")

    assert books == [
        Book("The Salt Road", Decimal("12.99"), 7, site_url + "books/salt-road.html"),
        Book(
            "Night Trains of Europe",
            Decimal("21.40"),
            12,
            site_url + "books/night-trains.html",
        ),
    ]


def test_scrape_empty_category_returns_no_books(
    context_pool: ContextPool, scraper: ModuleType, site_url: str
) -> None:
    books = scraper.scrape_catalogue(context_pool, site_url + "category/poetry.html")

    assert books == []


def test_scrape_catalogue_skips_malformed_book(
    context_pool: ContextPool,
    scraper: ModuleType,
    site_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bookshop_scraper")

    books = scraper.scrape_catalogue(context_pool, site_url + "index.html")

    titles = [book.title for book in books]
    assert titles == [
        "The Salt Road",
        "Harbour Lights",
        "A Field Guide to Moss",
        "Night Trains of Europe",
    ]
    prices = [book.price for book in books]
    assert prices == [
        Decimal("12.99"),
        Decimal("8.50"),
        Decimal("15.00"),
        Decimal("21.40"),
    ]
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("bookshop_scraper")
    ]
    assert len(warnings) == 1
    assert "books/quiet-orchard.html" in warnings[0]
    assert "no element matches 'p.price'" in warnings[0]


def test_read_book_parses_out_of_stock(pooled_page: Page, site_url: str) -> None:
    url = site_url + "books/field-guide-to-moss.html"

    book = read_book(pooled_page, url)

    assert book == Book("A Field Guide to Moss", Decimal("15.00"), 0, url)


def test_read_book_rejects_missing_price(pooled_page: Page, site_url: str) -> None:
    url = site_url + "books/quiet-orchard.html"

    with pytest.raises(PageError, match=r"no element matches 'p\.price'"):
        read_book(pooled_page, url)
