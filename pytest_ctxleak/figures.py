"""Per-test figures that the reports read.

Every part of the plugin that measures a test writes its figures into one
plain dict on ``item.stash[FIGURES_KEY]``. The reports copy that dict onto the
teardown report, where pytest-xdist carries it from a worker to the controller,
so every value must survive a round trip through JSON.

Keys, each written by one part of the plugin:

- ``peak_contexts`` and ``peak_pages`` (int): the most contexts and pages the
  test held open at once.
- ``processes_before`` and ``processes_after`` (dict of process type to count):
  the browsers' processes by type (``browser``, ``renderer``, ``gpu``,
  ``utility``, ``other``), where they were measured.
- ``pss_before`` and ``pss_after`` (int, bytes): the browsers' memory, where it
  was measured.
"""

from __future__ import annotations

import pytest

Figures = dict[str, object]

FIGURES_KEY = pytest.StashKey[Figures]()


def figures_of(item: pytest.Item) -> Figures:
    """Return the test's figures, created empty on first use."""
    return item.stash.setdefault(FIGURES_KEY, {})
