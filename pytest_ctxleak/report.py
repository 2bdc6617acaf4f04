"""The text of a leak: cause first, then where it was acquired, then what was done.

Modelled on goleak and Netty's leak detector: the first line names what leaked and
where, so it alone is a useful JUnit message and CI annotation; the stack in the
caller's code and the reclaim follow. Leases leaked from one line are one finding, so
a loop that leaks a thousand leases prints one entry, not a thousand.
"""

from __future__ import annotations

from typing import NamedTuple

from _pytest._code.code import ReprFileLocation, TerminalRepr
from _pytest._io import TerminalWriter

from pytest_ctxleak.ledger import LeaseRecord
from pytest_ctxleak.sites import Site
from pytest_ctxleak.watch import BROWSER, CONTEXT, PAGE, Watched

# Findings shown in full per test; the rest are counted.
MAX_SHOWN = 10
# Lease numbers listed for one grouped finding.
MAX_IDS = 8


# Kinds of finding, as the reports name them.
LEASE = "lease"
OVER_CAP = "over_cap"
KINDS = (LEASE, BROWSER, CONTEXT, PAGE, OVER_CAP)


class Leak(NamedTuple):
    """One finding of the check, ready to print, with its facts for the reports."""

    headline: str  # the cause and the site, one line
    site: Site
    details: tuple[str, ...]  # holder, reclaim, and other facts, one per line
    stack_title: str = "acquired at"
    kind: str = LEASE  # one of KINDS
    group_size: int = 1  # leases or objects in this finding, 1 for over_cap
    holder: str = ""  # who took or opened it, as Holder.describe() puts it
    reclaimed: tuple[str, ...] = ()  # what the reclaim did, one entry per outcome


class LeakedLease(NamedTuple):
    """A leaked lease and what the reclaim did with it."""

    record: LeaseRecord
    reclaimed: str


def lease_leaks(leaked: list[LeakedLease]) -> list[Leak]:
    """Group leaked leases by acquisition line and holder, one finding per group."""
    groups: dict[tuple[object, ...], list[LeakedLease]] = {}
    for item in leaked:
        top = item.record.site.top
        key = (top, item.record.holder)
        groups.setdefault(key, []).append(item)
    return [_lease_group_leak(group) for group in groups.values()]


def _lease_group_leak(group: list[LeakedLease]) -> Leak:
    first = group[0].record
    holder = first.holder
    by = f" by {holder.describe()}" if holder.kind == "fixture" else ""
    if len(group) == 1:
        entry = first.entry
        what = f"lease #{first.lease_id} of context #{entry.entry_id} ({entry.label})"
    else:
        ids = ", ".join(f"#{item.record.lease_id}" for item in group[:MAX_IDS])
        more = f" and {len(group) - MAX_IDS} more" if len(group) > MAX_IDS else ""
        what = f"{len(group)} leases ({ids}{more})"
    headline = (
        f"{what} {'was' if len(group) == 1 else 'were'} never released{by}; "
        f"acquired at {first.site.location()}"
    )
    reclaimed = tuple(sorted({item.reclaimed for item in group}))
    details = (f"held by {holder.describe()}", *(f"reclaimed: {r}" for r in reclaimed))
    return Leak(
        headline,
        first.site,
        details,
        kind=LEASE,
        group_size=len(group),
        holder=holder.describe(),
        reclaimed=reclaimed,
    )


class LeakedObject(NamedTuple):
    """A browser, context or page left open, and what the reclaim did with it."""

    watched: Watched
    reclaimed: str


_VERB = {BROWSER: "launched", CONTEXT: "created", PAGE: "opened"}


def object_leaks(leaked: list[LeakedObject]) -> list[Leak]:
    """Group objects left open by creation line and holder, one finding per group."""
    groups: dict[tuple[object, ...], list[LeakedObject]] = {}
    for item in leaked:
        watched = item.watched
        key = (watched.site.top, watched.holder, watched.kind, watched.how)
        groups.setdefault(key, []).append(item)
    return [_object_group_leak(group) for group in groups.values()]


def _object_group_leak(group: list[LeakedObject]) -> Leak:
    first = group[0].watched
    holder = first.holder
    by = f" by {holder.describe()}" if holder.kind == "fixture" else ""
    if len(group) == 1:
        what = f"a {first.describe()} was"
    else:
        what = f"{len(group)} {first.kind}s were"
    verb = _VERB[first.kind]
    if first.how == "created":
        where = f"{verb} at {first.site.location()}"
    else:
        where = f"{first.how} in the context created at {first.site.location()}"
    headline = f"{what} left open{by}; {where}"
    reclaimed = tuple(sorted({item.reclaimed for item in group}))
    details = (f"held by {holder.describe()}", *(f"reclaimed: {r}" for r in reclaimed))
    hint = _nested_allow_hint(first)
    if hint:
        details += (hint,)
    title = f"{verb} at" if first.how == "created" else "its context created at"
    return Leak(
        headline,
        first.site,
        details,
        title,
        kind=first.kind,
        group_size=len(group),
        holder=holder.describe(),
        reclaimed=reclaimed,
    )


def _nested_allow_hint(watched: Watched) -> str:
    """Name the allow rule for an object that a nested function created.

    A nested function cannot be named in a rule on its own, so the hint names the
    function it is defined in, which covers it.
    """
    holder = watched.holder
    if holder.kind == "fixture" and holder.scope != "function":
        return ""  # the fixture owns it and should close it in its teardown
    top = watched.site.top
    if top is None or watched.how != "created" or not top.module:
        return ""
    outer = top.enclosing_function()
    if outer is None:
        return ""
    return (
        f"created in a function nested in {outer}; if it stays open on purpose, "
        f"allow it with the allow rule '{top.module}:{outer}'"
    )


def over_cap_leak(
    peak: int, start: int, cap: int, site: Site, pool: str, call: str = "acquire"
) -> Leak:
    held_before = f", not counting {start} held when it started" if start else ""
    headline = (
        f"the test held {peak} contexts at once{held_before}, above the cap of "
        f"{cap}; the {call} that reached the peak was at {site.location()}"
    )
    details = (
        f"counted in: {pool}",
        "raise the cap with @pytest.mark.ctxleak(max_contexts=N) or "
        "--ctxleak-max-contexts, or hold fewer contexts at once",
    )
    title = "acquired at" if call == "acquire" else "created at"
    return Leak(headline, site, details, stack_title=title, kind=OVER_CAP)


def format_leaks(leaks: list[Leak], verbosity: int = 0) -> str:
    """Return the full text of a test's leaks, the first line naming the first cause."""
    depth = 6 if verbosity > 0 else 3
    lines: list[str] = []
    for index, leak in enumerate(leaks[:MAX_SHOWN]):
        if index:
            lines.append("")
        lines.append(f"ctxleak: {leak.headline}")
        stack = leak.site.format_stack(limit=depth)
        if stack:
            lines.append(f"  {leak.stack_title}:")
            lines += [f"    {line}" for line in stack]
            hidden = len(leak.site.frames) - depth
            if hidden > 0:
                lines.append(f"    ({hidden} more frames, shown with -v)")
        lines += [f"  {detail}" for detail in leak.details]
    if len(leaks) > 1:
        lines.append("")
        shown = min(len(leaks), MAX_SHOWN)
        left_out = (
            f"; {len(leaks) - shown} more not shown" if len(leaks) > shown else ""
        )
        lines.append(f"({len(leaks)} findings in this test{left_out})")
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
