"""Scrape a catalogue of the bookshop, releasing every lease on every path."""

from __future__ import annotations

import logging

from bookshop_scraper.books import Book, PageError, read_book, read_book_links
from pytest_ctxleak import ContextPool

logger = logging.getLogger(__name__)


def scrape_catalogue(pool: ContextPool, catalogue_url: str) -> list[Book]:
    """Scrape every book that a catalogue page links to, in the catalogue's order.

    A book whose page fails to load or parse is skipped with a logged warning.
    """
    with pool.acquire() as lease:
        book_urls = read_book_links(lease.new_page(), catalogue_url)
    books = []
    for url in book_urls:
        try:
            with pool.acquire() as lease:
                book = read_book(lease.new_page(), url)
        except PageError as error:
            logger.warning("skipped book page: %s", error)
            continue
        books.append(book)
    return books
