"""Scrape a catalogue of the bookshop, leaking a lease for every book page that fails.

This is scraper.py with one common bug, kept to show what the ctxleak check reports.
"""

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
            lease = pool.acquire()
            book = read_book(lease.new_page(), url)
            # The bug: when read_book raises, this line is skipped, so the lease
            # and its page stay open. scraper.py uses `with` instead.
            lease.release()
        except PageError as error:
            logger.warning("skipped book page: %s", error)
            continue
        books.append(book)
    return books
