"""Watch every browser, context and page that Playwright creates in this process.

Most leaks in real scrapers come from code that never touches a pool: a helper that
calls ``browser.new_context()`` and returns early, a popup that is never closed, a
browser a library launched. While the watch is installed, the creating methods of
Playwright's sync and async classes are wrapped to record each new object with its
creation site and holder. Playwright's own events (``close``, ``disconnected``,
``page``) mark objects closed and add pages that open by themselves, such as popups.

The watch only records; the plugin decides what is a leak.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import playwright.async_api as async_api
import playwright.sync_api as sync_api

from pytest_ctxleak.ledger import Holder
from pytest_ctxleak.pool import ops
from pytest_ctxleak.pool.base import (
    current_holder,
    describe_error,
    is_pool_creation,
)
from pytest_ctxleak.sites import Site, capture_site

logger = logging.getLogger("pytest_ctxleak")

BROWSER = "browser"
CONTEXT = "context"
PAGE = "page"

# (class, method, kind of object it returns) for both APIs. launch_persistent_context
# returns a context that owns its browser process, so it is watched as a context.
_CREATORS = (
    [(api.BrowserType, "launch", BROWSER) for api in (sync_api, async_api)]
    + [(api.BrowserType, "connect", BROWSER) for api in (sync_api, async_api)]
    + [(api.BrowserType, "connect_over_cdp", BROWSER) for api in (sync_api, async_api)]
    + [
        (api.BrowserType, "launch_persistent_context", CONTEXT)
        for api in (sync_api, async_api)
    ]
    + [(api.Browser, "new_context", CONTEXT) for api in (sync_api, async_api)]
    + [(api.Browser, "new_page", PAGE) for api in (sync_api, async_api)]
    + [(api.BrowserContext, "new_page", PAGE) for api in (sync_api, async_api)]
)


# Methods that start a browser process on this machine, or reach a remote one.
LAUNCHERS = frozenset({"launch", "launch_persistent_context"})
CONNECTORS = frozenset({"connect", "connect_over_cdp"})


class LaunchObserver(Protocol):
    """Told about every launch and connect, to find the browser's processes."""

    def before_launch(self) -> object:
        """Return what ``after_launch`` needs to tell new processes from old."""

    def after_launch(
        self, method: str, watched: Watched, before: object, user_data_dir: Any
    ) -> None:
        """Note the browser that ``method`` launched or connected to.

        ``user_data_dir`` is the profile folder of launch_persistent_context."""


@dataclass(eq=False)
class Watched:
    """One browser, context or page, with its creation site and holder."""

    watch_id: int
    kind: str
    obj: Any
    site: Site
    holder: Holder
    parent: Watched | None = None  # the context of a page, the browser of a context
    thread: int = 0  # the thread that created it; sync objects cannot leave it
    closed: bool = False
    allowed: bool = False  # an allow rule matched it, so it is never reported
    pooled: bool = False  # a context a pool created; the pool's cap covers it
    how: str = "created"  # "created", or "opened by the page itself" for popups
    # A context that Browser.new_page made for its page alone. It counts against
    # the cap, but the page is what the caller holds, so only the page is reported.
    page_owned: bool = False

    def describe(self) -> str:
        """Return the object as a phrase for messages, such as ``page (https://…)``."""
        if self.kind == PAGE:
            url = _safe_url(self.obj)
            return f"page {url}" if url else "page"
        if self.kind == BROWSER:
            return f"browser {_safe_attribute(self.obj, 'version')}".rstrip()
        return "context"


def _user_data_dir(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Return the profile folder given to launch_persistent_context, else None."""
    if name != "launch_persistent_context":
        return None
    return args[0] if args else kwargs.get("user_data_dir")


def _safe_url(page: Any) -> str:
    url = _safe_attribute(page, "url")
    return url if url and url != "about:blank" else ""


def _safe_attribute(obj: Any, name: str) -> str:
    try:
        return str(getattr(obj, name))
    except Exception:  # a closed object may refuse; the description is optional
        return ""


@dataclass
class Watch:
    """The registry of watched objects. Install it once per pytest run."""

    # watch_id -> record, for objects not yet closed. Closed ones are dropped, so
    # the registry stays as small as what is open.
    open: dict[int, Watched] = field(default_factory=dict)
    _by_object: dict[int, Watched] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _originals: list[tuple[type, str, Callable[..., Any]]] = field(default_factory=list)
    # Open contexts made outside any pool, and the most open at once since the last
    # reset_outside_peak(): the per-test cap applies to them too.
    outside_open: int = 0
    outside_peak: int = 0
    outside_peak_site: Site = field(default_factory=lambda: Site(()))
    # The holder for objects recorded where no holder is set, such as popups,
    # whose event handlers run in Playwright's dispatcher: the running test.
    fallback_holder: Holder | None = None
    # Open objects by kind, pools' contexts included, and the max open at once
    # since the last reset_peaks(). The reports plot them test by test. They match
    # the kinds in ``open`` once every close has been noticed.
    open_counts: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)
    # Called before and after every launch and connect. None unless browser
    # processes are measured.
    launch_observer: LaunchObserver | None = None
    # Objects recorded so far in the run. A test that starts with nothing open and
    # ends with this count unchanged made nothing, and its check can be skipped.
    recorded: int = 0

    def install(self) -> None:
        """Wrap Playwright's creating methods. Calling it twice changes nothing."""
        if self._originals:
            return
        for cls, name, kind in _CREATORS:
            original = cls.__dict__[name]
            self._originals.append((cls, name, original))
            setattr(cls, name, self._wrap(original, kind, name))
        start = threading.Thread.__dict__["start"]
        self._originals.append((threading.Thread, "start", start))
        setattr(threading.Thread, "start", _start_with_holder(start))  # noqa: B010

    def uninstall(self) -> None:
        """Restore Playwright's methods."""
        for cls, name, original in reversed(self._originals):
            setattr(cls, name, original)
        self._originals.clear()

    def _wrap(
        self, original: Callable[..., Any], kind: str, name: str
    ) -> Callable[..., Any]:
        watch = self
        starts = name in LAUNCHERS or name in CONNECTORS
        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def async_creator(owner: Any, *args: Any, **kwargs: Any) -> Any:
                __tracebackhide__ = True
                site = capture_site(WATCH_DEPTH)
                observer = watch.launch_observer if starts else None
                before = observer.before_launch() if observer is not None else None
                created = await original(owner, *args, **kwargs)
                watched = watch.record(kind, created, site, owner)
                if observer is not None:
                    observer.after_launch(
                        name, watched, before, _user_data_dir(name, args, kwargs)
                    )
                return created

            return async_creator

        @functools.wraps(original)
        def creator(owner: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            site = capture_site(WATCH_DEPTH)
            observer = watch.launch_observer if starts else None
            before = observer.before_launch() if observer is not None else None
            created = original(owner, *args, **kwargs)
            watched = watch.record(kind, created, site, owner)
            if observer is not None:
                observer.after_launch(
                    name, watched, before, _user_data_dir(name, args, kwargs)
                )
            return created

        return creator

    def record(
        self, kind: str, obj: Any, site: Site, owner: Any = None, how: str = "created"
    ) -> Watched:
        """Register a new object, or give a known one its creation site."""
        known = self._by_object.get(id(obj))
        if known is not None and known.obj is obj:
            if site.frames and how == "created":
                known.site = site
                known.how = how
            return known
        parent = self._by_object.get(id(owner)) if owner is not None else None
        if parent is not None and parent.obj is not owner:
            parent = None
        holder = current_holder()
        if holder.kind == "code":
            holder = getattr(threading.current_thread(), _THREAD_HOLDER, holder)
        if holder.kind == "code" and self.fallback_holder is not None:
            holder = self.fallback_holder
        watched = Watched(next(self._ids), kind, obj, site, holder, parent)
        self.recorded += 1
        watched.thread = threading.get_ident()
        watched.how = how
        if kind == CONTEXT:
            watched.pooled = is_pool_creation()
            if not watched.pooled:
                self.outside_open += 1
                if self.outside_open > self.outside_peak:
                    self.outside_peak = self.outside_open
                    self.outside_peak_site = site
        self.open[watched.watch_id] = watched
        self._by_object[id(obj)] = watched
        count = self.open_counts.get(kind, 0) + 1
        self.open_counts[kind] = count
        self.peaks[kind] = max(self.peaks.get(kind, 0), count)
        self._listen(watched)
        if kind == PAGE and parent is not None and parent.kind == BROWSER:
            # Browser.new_page made a context for this page, out of the wrapper's
            # sight; closing the page closes it.
            context = getattr(obj, "context", None)
            if context is not None:
                owned = self.record(CONTEXT, context, site, owner)
                owned.page_owned = True
        return watched

    def _listen(self, watched: Watched) -> None:
        obj = watched.obj
        close_event = "disconnected" if watched.kind == BROWSER else "close"
        obj.on(close_event, lambda *_: self._closed(watched))
        if watched.kind == CONTEXT:
            obj.on("page", lambda page: self._page_opened(watched, page))
            for page in list(obj.pages):  # a persistent context starts with one
                self.record(PAGE, page, watched.site, obj, how="opened with it")

    def _page_opened(self, context: Watched, page: Any) -> None:
        # new_page() records the page again when it returns, with its call site;
        # a popup keeps the site of its context.
        self.record(PAGE, page, context.site, context.obj, how="opened by the page")

    def reset_outside_peak(self) -> None:
        """Start a new peak measurement of contexts outside any pool."""
        self.outside_peak = self.outside_open
        self.outside_peak_site = Site(())

    def reset_peaks(self) -> None:
        """Start a new peak measurement of open objects of every kind."""
        self.peaks = dict(self.open_counts)

    def _closed(self, watched: Watched) -> None:
        watched.closed = True
        was_open = self.open.pop(watched.watch_id, None) is not None
        if was_open:
            self.open_counts[watched.kind] -= 1
        if was_open and watched.kind == CONTEXT and not watched.pooled:
            self.outside_open -= 1
        if self._by_object.get(id(watched.obj)) is watched:
            del self._by_object[id(watched.obj)]

    def open_objects(self) -> list[Watched]:
        """Return the watched objects that are still open, oldest first."""
        found = []
        for watched in list(self.open.values()):
            if is_closed(watched):
                self._closed(watched)
            else:
                found.append(watched)
        return found


# The Thread attribute that stores the holder of the code that started the thread.
_THREAD_HOLDER = "_ctxleak_holder"


def _start_with_holder(start: Callable[..., None]) -> Callable[..., None]:
    """Wrap Thread.start so that the new thread carries the holder that started it.

    A thread starts with an empty contextvars context, so without this a browser
    that a test's thread opens would belong to whichever test is running then.
    """

    @functools.wraps(start)
    def start_with_holder(thread: threading.Thread) -> None:
        holder = current_holder()
        # A thread pool's worker runs the tasks of whichever test submits them,
        # so it keeps no holder, and its objects belong to the running test.
        target = getattr(thread, "_target", None)
        pooled = getattr(target, "__module__", "") == "concurrent.futures.thread"
        if holder.kind != "code" and not pooled:
            setattr(thread, _THREAD_HOLDER, holder)
        start(thread)

    return start_with_holder


def is_closed(watched: Watched) -> bool:
    """Tell whether an object is closed, also when its close event was missed."""
    if watched.closed:
        return True
    if watched.parent is not None and is_closed(watched.parent):
        watched.closed = True
        return True
    obj = watched.obj
    loop = getattr(getattr(obj, "_impl_obj", None), "_loop", None)
    if loop is not None and loop.is_closed():
        # Its Playwright was stopped, which ends every object it made.
        watched.closed = True
        return True
    try:
        if watched.kind == PAGE:
            closed = bool(obj.is_closed())
        elif watched.kind == BROWSER:
            closed = not obj.is_connected()
        else:
            browser = obj.browser
            closed = browser is not None and obj not in browser.contexts
    except Exception:  # a dead connection: the object is gone with it
        closed = True
    if closed:
        watched.closed = True
    return closed


# User frames kept per creation site: deep enough for allow rules to find the
# allowed function under the helpers it calls.
WATCH_DEPTH = 30

# Seconds of one settle attempt: long enough for a close event already on its way.
SETTLE_STEP = 0.05


def pump_events(objects: list[Watched], seconds: float) -> None:
    """Run the event loops behind ``objects`` for ``seconds``, so that events already
    sent by the browser (closes, disconnects) reach their handlers.

    A sync object's loop runs only inside a Playwright call, and an async object's
    loop is idle between tests; neither delivers events on its own.
    """
    loops: dict[int, tuple[Any, Any]] = {}
    for watched in objects:
        if watched.thread != threading.get_ident():
            continue  # another thread's loop is not ours to run
        impl = getattr(watched.obj, "_impl_obj", None)
        loop = getattr(impl, "_loop", None)
        if loop is not None and id(loop) not in loops:
            loops[id(loop)] = (loop, watched.obj)
    for loop, obj in loops.values():
        try:
            if type(obj).__module__.startswith("playwright.async_api"):
                if not loop.is_running() and not loop.is_closed():
                    loop.run_until_complete(asyncio.sleep(seconds))
            else:
                ops.run_sync(obj, asyncio.sleep(seconds), seconds + 1)
        except Exception as error:  # a dead connection: nothing left to deliver
            logger.debug("settling events failed: %s", describe_error(error))


def close_watched(watched: Watched, timeout: float) -> str:
    """Close a leaked object with a timeout; return what happened, never raise."""
    obj = watched.obj
    impl = getattr(obj, "_impl_obj", None)
    if impl is None:
        return "not closed: not a Playwright object"
    if watched.thread != threading.get_ident():
        return "not closed: it belongs to another thread, which must close it"
    try:
        if type(obj).__module__.startswith("playwright.async_api"):
            loop = impl._loop
            if loop.is_closed():
                return "not closed: its event loop is closed"
            closing = asyncio.wait_for(ops.close(impl), timeout)
            if loop.is_running():
                loop.create_task(closing)
                return "close scheduled on its event loop"
            # Between tests the loop is idle, so run it until the close is done.
            loop.run_until_complete(closing)
        else:
            ops.run_sync(obj, ops.close(impl), timeout)
    except Exception as error:
        if ops.is_timeout(error):
            return f"close did not finish within {timeout:g} s"
        return f"close failed ({describe_error(error)})"
    watched.closed = True
    return "closed"
