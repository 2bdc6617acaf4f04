"""Browser processes and memory per test: figures, opt-in limits, soak, session end.

The hooks here measure the local browsers' process trees (see ``procs``) at the
start of each test's window, or right after launch for a browser launched during
it. They measure again at the window's end, before the leak check closes what the
test left open.
Process counts are measured by default; memory (summed PSS) costs a read of every
process's page tables, so it is measured only when ``--ctxleak-measure=memory``, a
memory limit or soak mode asks for it. At the end of the run they report browsers
still running and defunct children.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest

from pytest_ctxleak.figures import figures_of
from pytest_ctxleak.procs import (
    BrowserTree,
    Leftover,
    ProcessTracker,
    Sample,
    empty_counts,
    format_size,
    wait_for_leftovers,
)
from pytest_ctxleak.report import Leak
from pytest_ctxleak.settings import ProcessLimits, Settings, run_settings, settings_for
from pytest_ctxleak.sites import Frame, Site
from pytest_ctxleak.soak import SoakRun, repeating, soak_findings
from pytest_ctxleak.watch import CONTEXT, PAGE, Watch

logger = logging.getLogger("pytest_ctxleak")

# Seconds the end-of-run check gives closing browsers to exit and exited children
# to be reaped before it reports them.
LEFTOVER_GRACE = 2.0


@dataclass
class ProcessWindow:
    """The process measurement of the test that is running."""

    nodeid: str
    limits: ProcessLimits
    memory: bool  # whether PSS is summed, besides counting processes
    judged: bool  # False when the test's mode is off: measure, but do not fail
    # Tree key -> its baseline: measured when the window opened, or right after
    # launch for a browser launched during the window.
    baseline: dict[int, Sample] = field(default_factory=dict)
    soak: SoakRun | None = None
    findings: list[Leak] = field(default_factory=list)


WINDOW_KEY = pytest.StashKey[ProcessWindow]()


class ProcessHooks:
    """The hooks of process measurement, registered as a plugin at configure."""

    def __init__(self, settings: Settings, watch: Watch) -> None:
        self.settings = settings
        self.watch = watch
        self.tracker = ProcessTracker()
        # Start times of processes are compared with this one, in psutil's clock:
        # it counts from the boot time in whole seconds, so it can lag
        # time.time() by up to a second.
        self.started = psutil.Process().create_time()
        self.leftovers: list[Leftover] = []
        # The running test, while its window waits for a browser to launch.
        self.waiting: pytest.Item | None = None
        watch.launch_observer = self.tracker

    def open_window(self, item: pytest.Item) -> None:
        if not self.tracker.trees and not self.tracker.remote:
            test = settings_for(item)
            if test.soak.repeat <= 1 or test.mode == "off":
                # The usual test without a browser: its window opens at the first
                # launch during the test, if one comes.
                self.waiting = item
                self.tracker.on_launch = self._open_at_launch
                return
        self._open(item, self.tracker.live_trees())

    def _open_at_launch(self, tree: BrowserTree) -> None:
        item, self.waiting = self.waiting, None
        self.tracker.on_launch = None
        if item is not None:
            self._open(item, [tree])

    def _open(self, item: pytest.Item, trees: list[BrowserTree]) -> None:
        test = settings_for(item)
        judged = test.mode != "off"
        soak = test.soak.repeat > 1 and judged
        limits = test.limits if judged else ProcessLimits()
        if self.settings.measure == "off" and not limits.any and not soak:
            return
        memory = self.settings.measure == "memory" or limits.need_memory or soak
        window = ProcessWindow(item.nodeid, limits, memory, judged)
        if soak:
            window.soak = SoakRun(test.soak)
        for tree in trees:
            window.baseline[tree.key] = self.tracker.sample([tree], memory)

        def on_launch(tree: BrowserTree) -> None:
            window.baseline[tree.key] = self.tracker.sample([tree], memory)

        self.tracker.on_launch = on_launch
        item.stash[WINDOW_KEY] = window

    def soak_sample(self, window: ProcessWindow) -> dict[str, float | None]:
        contexts = pages = 0
        for watched in self.watch.open_objects():
            if watched.kind == CONTEXT:
                contexts += 1
            elif watched.kind == PAGE:
                pages += 1
        trees = self.tracker.live_trees()
        sample = self.tracker.sample(trees, memory=True) if trees else None
        return {
            "contexts": contexts,
            "pages": pages,
            "renderers": sample.counts["renderer"] if sample else None,
            "pss": sample.pss if sample else None,
        }

    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter
    ) -> None:
        # NOTE: not tried under pytest-xdist, whose workers launch the browsers
        # while the summary is written by the controller.
        if self.settings.measure == "off":
            return
        found = wait_for_leftovers(
            self.tracker.trees.values(), self.started, LEFTOVER_GRACE
        )
        self.leftovers = found
        if not found:
            return
        running = [leftover for leftover in found if leftover.state == "running"]
        defunct = [leftover for leftover in found if leftover.state == "defunct"]
        parts = []
        if running:
            parts.append(f"{len(running)} browser{_s(running)} still running")
        if defunct:
            parts.append(f"{len(defunct)} defunct child process{_es(defunct)}")
        title = f"ctxleak: {' and '.join(parts)} at the end of the session"
        terminalreporter.section(title)
        logger.warning("%s", title)
        for leftover in found:
            line = f"pid {leftover.pid} ({leftover.state}): {leftover.command}"
            terminalreporter.line(line)
            logger.warning("%s", line)


def _s(items: list[Leftover]) -> str:
    return "" if len(items) == 1 else "s"


def _es(items: list[Leftover]) -> str:
    return "" if len(items) == 1 else "es"


HOOKS_NAME = "ctxleak-procs"
HOOKS_KEY = pytest.StashKey[ProcessHooks]()


def configure(config: pytest.Config, watch: Watch) -> None:
    """Register the process hooks and make them the watch's launch observer."""
    if HOOKS_KEY not in config.stash:
        hooks = ProcessHooks(run_settings(config), watch)
        config.stash[HOOKS_KEY] = hooks
        config.pluginmanager.register(hooks, HOOKS_NAME)


def open_window(item: pytest.Item) -> None:
    """Measure the browsers as the test's window opens.

    The plugin calls it first as the test's run protocol starts, and
    ``end_window`` last as it ends.
    """
    hooks = item.config.stash.get(HOOKS_KEY, None)
    if hooks is not None:
        hooks.open_window(item)


def soak_function(
    item: pytest.Item, function: Callable[..., Any]
) -> Callable[..., Any] | None:
    """Return ``function`` wrapped to repeat for soak mode, or None without soak.

    The plugin runs the test's call through the returned function, then calls
    ``end_soak``.
    """
    if WINDOW_KEY not in item.stash:
        return None
    window = item.stash[WINDOW_KEY]
    hooks = item.config.stash.get(HOOKS_KEY, None)
    if hooks is None or window.soak is None:
        return None
    return repeating(function, window.soak, lambda: hooks.soak_sample(window))


def end_soak(item: pytest.Item) -> None:
    """Name the repetition that raised, if one did, in the call's report."""
    run = item.stash[WINDOW_KEY].soak if WINDOW_KEY in item.stash else None
    if run is not None and run.failed_at is not None:
        item.add_report_section(
            "call",
            "ctxleak",
            f"soak repetition {run.failed_at} of {run.soak.repeat} raised",
        )


def end_window(item: pytest.Item) -> None:
    hooks = item.config.stash.get(HOOKS_KEY, None)
    if hooks is None:
        return
    hooks.tracker.on_launch = None
    hooks.waiting = None
    if WINDOW_KEY in item.stash:
        del item.stash[WINDOW_KEY]


def close_window(item: pytest.Item) -> None:
    """Measure the browsers at the end of the test's window and judge the limits.

    Call it after the test's function-scoped fixtures are torn down and before the
    leak check closes what the test left open, so the measurement sees the leak.
    """
    hooks = item.config.stash.get(HOOKS_KEY, None)
    if hooks is None:
        return
    # Not stash.get, which raises and catches a KeyError on every miss.
    window = item.stash[WINDOW_KEY] if WINDOW_KEY in item.stash else None  # noqa: SIM401
    # Written here, not with the window: a test whose only browser was reached
    # through connect opens no window.
    remote = hooks.tracker.remote
    if remote and (window is not None or hooks.settings.measure != "off"):
        figures_of(item)["unmeasured_browsers"] = len(remote)
    if window is None:
        return
    try:
        window.findings = _judge(item, hooks, window)
    except Exception:  # measuring must never crash the run
        logger.exception("measuring the browsers of %s failed", item.nodeid)


def findings(item: pytest.Item) -> list[Leak]:
    """Return the test's soak and limit findings, soak first."""
    if WINDOW_KEY not in item.stash:
        return []
    return list(item.stash[WINDOW_KEY].findings)


def _judge(item: pytest.Item, hooks: ProcessHooks, window: ProcessWindow) -> list[Leak]:
    tracker = hooks.tracker
    figures = figures_of(item)
    found = []
    if window.soak is not None:
        figures["soak"] = window.soak.figures()
        found += soak_findings(window.soak, _test_site(item))
    trees = tracker.live_trees()
    if not trees and not window.baseline:
        return found
    before = _total(window.baseline.values())
    after = tracker.sample(trees, window.memory)
    figures["processes_before"] = before.counts
    figures["processes_after"] = after.counts
    if window.memory:
        figures["pss_before"] = before.pss
        figures["pss_after"] = after.pss
    if window.judged and window.limits.any:
        found += _limit_findings(window.limits, before, after, _test_site(item))
    return found


def _total(samples: Iterable[Sample]) -> Sample:
    counts = empty_counts()
    pss: int | None = 0
    uss_used = 0
    for sample in samples:
        for kind, count in sample.counts.items():
            counts[kind] += count
        pss = None if pss is None or sample.pss is None else pss + sample.pss
        uss_used += sample.uss_used
    return Sample(counts, pss, uss_used)


def _limit_findings(
    limits: ProcessLimits, before: Sample, after: Sample, site: Site
) -> list[Leak]:
    counts = ", ".join(f"{count} {kind}" for kind, count in after.counts.items())
    found = []
    renderers = after.counts["renderer"]
    if limits.max_renderers is not None and renderers > limits.max_renderers:
        found.append(
            Leak(
                f"the browsers had {renderers} renderer processes at the end of the "
                f"test, above the limit of {limits.max_renderers} (max_renderers)",
                site,
                (
                    f"processes by type: {counts}",
                    "each open page keeps a renderer; close the pages the test "
                    "opened, or raise max_renderers",
                ),
                "test defined at",
            )
        )
    if after.pss is None:
        return found
    if limits.max_memory is not None and after.pss > limits.max_memory:
        found.append(
            Leak(
                f"the browsers used {format_size(after.pss)} (summed PSS) at the end "
                f"of the test, above the limit of {format_size(limits.max_memory)} "
                "(max_memory)",
                site,
                (f"processes by type: {counts}", *_uss_note(after)),
                "test defined at",
            )
        )
    if (
        limits.max_memory_growth is not None
        and before.pss is not None
        and after.pss - before.pss > limits.max_memory_growth
    ):
        growth = after.pss - before.pss
        found.append(
            Leak(
                f"the browsers' memory grew by {format_size(growth)} (summed PSS, "
                f"from {format_size(before.pss)} to {format_size(after.pss)}) during "
                f"the test, above the limit of {format_size(limits.max_memory_growth)}"
                " (max_memory_growth)",
                site,
                (f"processes by type: {counts}", *_uss_note(after)),
                "test defined at",
            )
        )
    return found


def _uss_note(sample: Sample) -> tuple[str, ...]:
    if not sample.uss_used:
        return ()
    return (
        f"the kernel reported no PSS for {sample.uss_used} processes; their USS "
        "was counted instead",
    )


def _test_site(item: pytest.Item) -> Site:
    path, line, name = item.location
    filename = str(item.path) if hasattr(item, "path") else path
    return Site((Frame(filename, (line or 0) + 1, name.split("[")[0]),))
