"""Per-test figures that the reports read.

Every part of the plugin that measures a test writes its figures into one
plain dict on ``item.stash[FIGURES_KEY]``. The reports copy that dict onto the
teardown report, where pytest-xdist carries it from a worker to the controller,
so every value must survive a round trip through JSON.

Keys, each written by one part of the plugin:

- ``peak_contexts`` and ``peak_pages`` (int): the most contexts and pages the
  test held open at once.
- ``processes_before`` and ``processes_after`` (dict of process type to count):
  the local browsers' processes by type (``browser``, ``renderer``, ``gpu``,
  ``utility``, ``other``). Written by ``limits`` for every test during which a
  browser launched on this machine was running, unless ``--ctxleak-measure=off``.
  "Before" is the start of the test's window, or right after the launch for a
  browser launched during it. "After" is the end of the window, before the leak
  check closes what the test left open.
- ``pss_before`` and ``pss_after`` (int, bytes): the same browsers' memory as
  summed PSS (USS for a process without PSS). Written only when memory was
  measured: ``--ctxleak-measure=memory``, a memory limit or soak mode.
- ``unmeasured_browsers`` (int): browsers reached through ``connect`` or
  ``connect_over_cdp`` so far in the run. They run elsewhere, so the figures
  above leave them out. Written only when there is one.
- ``soak`` (dict): soak mode's record. ``repetitions`` and ``warmup`` (int), as
  set; ``done`` (int), the repetitions that returned; ``series`` (dict of series
  name to a list with one value per repetition: ``contexts`` and ``pages`` open,
  ``renderers`` and ``pss`` in bytes, the last two only with a local browser);
  ``slopes`` and ``slope_errors`` (dict of series name to the least-squares
  slope per repetition after the warm-up, and its standard error).
"""

from __future__ import annotations

import pytest

Figures = dict[str, object]

FIGURES_KEY = pytest.StashKey[Figures]()


def figures_of(item: pytest.Item) -> Figures:
    """Return the test's figures, created empty on first use."""
    stash = item.stash
    # A membership test, not setdefault: pytest's Stash raises and catches a
    # KeyError on every miss, and this runs for every test.
    if FIGURES_KEY in stash:
        return stash[FIGURES_KEY]
    figures: Figures = {}
    stash[FIGURES_KEY] = figures
    return figures
