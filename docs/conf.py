"""Sphinx configuration of the pytest-ctxleak documentation.

Build it strictly (every warning an error) from the repository root:

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import pytest_ctxleak

project = "pytest-ctxleak"
copyright = "pytest-ctxleak contributors"
release = pytest_ctxleak.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

# The pages are Markdown, so they read the same on GitHub and on the site.
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Heading anchors, so that links such as reference.md#command-line-options work
# on the site as they do on GitHub.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Signatures show the types; descriptions come from the docstrings.
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"

html_theme = "furo"
html_title = f"pytest-ctxleak {release}"
html_static_path: list[str] = []
