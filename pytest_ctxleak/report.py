"""The text of a leak: cause first, then where it was acquired, then what was done.

Modelled on goleak and Netty's leak detector: the first line says what leaked and
where, so it alone is a useful JUnit message and CI annotation; the stack in the
caller's code and the reclaim follow.
"""

from __future__ import annotations

from typing import NamedTuple

from _pytest._code.code import ReprFileLocation, TerminalRepr
from _pytest._io import TerminalWriter

from pytest_ctxleak.ledger import LeaseRecord
from pytest_ctxleak.sites import Site


class Leak(NamedTuple):
    """One finding of the check, ready to print."""

    headline: str  # the cause and the site, one line
    site: Site
    details: tuple[str, ...]  # holder, reclaim, and other facts, one per line


def lease_leak(record: LeaseRecord, reclaimed: str) -> Leak:
    entry = record.entry
    headline = (
        f"lease #{record.lease_id} of context #{entry.entry_id} ({entry.label}) "
        f"was never released; acquired at {record.site.location()}"
    )
    details = (f"held by {record.holder.describe()}", f"reclaimed: {reclaimed}")
    return Leak(headline, record.site, details)


def over_cap_leak(peak: int, cap: int, site: Site, pool: str) -> Leak:
    headline = (
        f"open contexts peaked at {peak}, above the cap of {cap}; "
        f"the acquire that reached the peak was at {site.location()}"
    )
    details = (
        f"pool: {pool}",
        "raise the cap with @pytest.mark.ctxleak(max_contexts=N) or "
        "--ctxleak-max-contexts, or hold fewer contexts at once",
    )
    return Leak(headline, site, details)


def format_leaks(leaks: list[Leak], verbosity: int = 0) -> str:
    """Return the full text of a test's leaks, the first line naming the first cause."""
    count = len(leaks)
    noun = "leak" if count == 1 else "leaks"
    lines = [f"ctxleak: {leaks[0].headline}"]
    if count > 1:
        lines.append(f"({count} {noun} in this test)")
    depth = 6 if verbosity > 0 else 3
    for index, leak in enumerate(leaks):
        if index:
            lines.append("")
            lines.append(f"ctxleak: {leak.headline}")
        stack = leak.site.format_stack(limit=depth)
        if stack:
            lines.append("  acquired at:")
            lines += [f"    {line}" for line in stack]
            hidden = len(leak.site.frames) - depth
            if hidden > 0:
                lines.append(f"    ({hidden} more frames, shown with -v)")
        lines += [f"  {detail}" for detail in leak.details]
    return "\n".join(lines)


class LeakRepr(TerminalRepr):
    """A test report's failure text for leaks, with a one-line crash message.

    JUnit XML and other reporters read ``reprcrash.message`` as the short reason.
    """

    def __init__(self, text: str, site: Site) -> None:
        self.text = text
        top = site.top
        path, lineno = (top.filename, top.lineno) if top else ("<unknown>", 0)
        self.reprcrash = ReprFileLocation(path, lineno, text.splitlines()[0])

    def toterminal(self, tw: TerminalWriter) -> None:
        for line in self.text.splitlines():
            tw.line(line, red=line.startswith("ctxleak:"))
