"""The Book record and the Playwright extraction that both scrapers share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from playwright.sync_api import Page

BOOK_LINK_SELECTOR = "a.book-link"
TITLE_SELECTOR = "h1.book-title"
PRICE_SELECTOR = "p.price"
AVAILABILITY_SELECTOR = "p.availability"

PRICE_PATTERN = re.compile(r"£(\d+\.\d{2})")
IN_STOCK_PATTERN = re.compile(r"In stock \((\d+) available\)")
OUT_OF_STOCK = "Out of stock"


@dataclass(frozen=True)
class Book:
    """One book as its page on the shop lists it."""

    title: str
    price: Decimal  # pounds sterling
    stock: int  # copies available, 0 when out of stock
    url: str


class PageError(ValueError):
    """A page failed to load, or lacks an element, or has text that cannot be parsed."""


def read_book_links(page: Page, catalogue_url: str) -> list[str]:
    """Open a catalogue page and return the absolute URLs of its book links."""
    _open(page, catalogue_url)
    links = page.locator(BOOK_LINK_SELECTOR)
    urls: list[str] = links.evaluate_all("links => links.map(link => link.href)")
    return urls


def read_book(page: Page, url: str) -> Book:
    """Open a book page and extract its fields. Raises PageError on a malformed page."""
    _open(page, url)
    title = _read_text(page, TITLE_SELECTOR)
    price = parse_price(_read_text(page, PRICE_SELECTOR), url)
    stock = parse_stock(_read_text(page, AVAILABILITY_SELECTOR), url)
    return Book(title, price, stock, url)


def parse_price(text: str, url: str) -> Decimal:
    """Parse a price such as '£12.99' into pounds."""
    match = PRICE_PATTERN.fullmatch(text)
    if match is None:
        raise PageError(f"invalid price {text!r} on {url}: expected e.g. '£12.99'")
    return Decimal(match.group(1))


def parse_stock(text: str, url: str) -> int:
    """Parse 'In stock (N available)' into N, and 'Out of stock' into 0."""
    if text == OUT_OF_STOCK:
        return 0
    match = IN_STOCK_PATTERN.fullmatch(text)
    if match is None:
        raise PageError(
            f"invalid availability {text!r} on {url}: expected "
            f"'In stock (N available)' or {OUT_OF_STOCK!r}"
        )
    return int(match.group(1))


def _open(page: Page, url: str) -> None:
    response = page.goto(url)
    if response is None or not response.ok:
        status = "no response" if response is None else f"HTTP {response.status}"
        raise PageError(f"loading {url} failed: {status}")


def _read_text(page: Page, selector: str) -> str:
    """Return the text of the first element that matches, or raise PageError."""
    # Locator actions wait up to Playwright's default timeout of 30 s for a missing
    # element, but count() returns at once. goto() has already waited for the load.
    locator = page.locator(selector)
    if locator.count() == 0:
        raise PageError(f"no element matches {selector!r} on {page.url}")
    return locator.first.inner_text().strip()
