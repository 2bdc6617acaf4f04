"""A small scraper for the Quayside Books example site, in a fixed and a leaky version.

``scraper`` and ``leaky_scraper`` differ only in how they release the lease of each
book page. ``books`` contains everything they share.
"""
