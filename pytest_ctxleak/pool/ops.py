"""Browser-side steps of a pool: resetting and closing contexts and pages.

The steps are coroutines over Playwright's implementation objects (``_impl_obj``),
which both the sync and the async API wrap. The sync pool runs them on its objects'
private event loop, so both pools share one reset rule and every step gets a timeout,
even though the sync API's own close() has none and blocks forever on a hung renderer.
Running the steps of a reset concurrently also costs one round trip instead of one
per call.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, NamedTuple

# NOTE: `_impl_obj` and the sync wrapper's `_sync` are Playwright internals. They
# exist unchanged from Playwright 1.20 through 1.65, the newest version tested.

# Context methods whose effect a reset must undo, by what undoes it. clear_cookies()
# runs on every reset, so only these are restored, and only when a holder called them:
# each restore is a round trip to the browser.
RESTORABLE = {
    "set_offline": "offline",
    "set_extra_http_headers": "headers",
    "set_geolocation": "geolocation",
    "grant_permissions": "permissions",
    "clear_permissions": "permissions",
    "route": "routes",
    "route_from_har": "routes",
    "route_web_socket": "routes",
    "unroute": "routes",
    "set_default_timeout": "timeouts",
    "set_default_navigation_timeout": "timeouts",
}

# Context methods whose effect Playwright's API cannot undo: a context where a holder
# called one is closed instead of reused.
UNRESTORABLE = frozenset(
    {"add_init_script", "expose_binding", "expose_function", "set_storage_state"}
)

TRACKED_METHODS = (*RESTORABLE, *UNRESTORABLE)

# Noted in a slot's ``touched`` when a page's renderer process crashed: the crashed
# page cannot be used to clear storage, so the context is closed, not reused.
CRASHED = "crashed"

# Noted when a holder used the context's fake clock (``context.clock``), which
# Playwright cannot uninstall: the context is closed, not reused.
CLOCK = "clock"
CLOCK_METHODS = (
    "install",
    "fast_forward",
    "pause_at",
    "resume",
    "run_for",
    "set_fixed_time",
    "set_system_time",
)

# Marks that make a context unusable for the next lease.
RECYCLE_MARKS = frozenset({CRASHED, CLOCK})

Call = tuple[str, dict[str, Any]]


class ResetPlan(NamedTuple):
    """The steps that make a context as good as new."""

    origins: tuple[str, ...]  # origins whose storage must be cleared
    restore: tuple[Call, ...]  # context calls that run together
    grant: tuple[str, ...]  # permissions to grant again after clearing


def plan_reset(
    options: Mapping[str, Any],
    touched: Iterable[str],
    origins: Iterable[str],
    has_pages: bool,
) -> ResetPlan | None:
    """Decide how to reset a context, or return None if it must be closed instead.

    ``touched`` names what holders changed (values of RESTORABLE, or UNRESTORABLE
    method names); ``origins`` are the http(s) origins its frames navigated to.
    Storage of those origins is cleared through the Chrome DevTools Protocol, which
    needs an open page, so a context without one is closed rather than reused.
    """
    touched = set(touched)
    origins = tuple(sorted(origins))
    if "storage_state" in options:
        # NOTE: clearing storage would also drop the state the context was made
        # with, so such contexts are recycled instead of restored.
        return None
    if touched & (UNRESTORABLE | RECYCLE_MARKS) or (origins and not has_pages):
        return None
    restore: list[Call] = [("clear_cookies", {})]
    if "offline" in touched:
        restore.append(("set_offline", {"offline": bool(options.get("offline"))}))
    if "headers" in touched:
        headers = dict(options.get("extra_http_headers", {}))
        restore.append(("set_extra_http_headers", {"headers": headers}))
    if "geolocation" in touched:
        restore.append(("set_geolocation", {"geolocation": options.get("geolocation")}))
    if "routes" in touched:
        restore.append(("unroute_all", {"behavior": "ignoreErrors"}))
    if "timeouts" in touched:
        # None means "not set": Playwright's own default applies again.
        restore.append(("set_default_timeout", {"timeout": None}))
        restore.append(("set_default_navigation_timeout", {"timeout": None}))
    grant: tuple[str, ...] = ()
    if "permissions" in touched:
        restore.append(("clear_permissions", {}))
        grant = tuple(options.get("permissions") or ())
    return ResetPlan(origins, tuple(restore), grant)


def call(impl: Any, name: str, **arguments: Any) -> Awaitable[Any]:
    """Call a method of a Playwright implementation object.

    The implementation declares its optional arguments without defaults, so every
    argument that is not given is passed as None, which is what the public API does.
    """
    method = getattr(impl, name)
    for parameter_name, parameter in inspect.signature(method).parameters.items():
        if (
            parameter_name not in arguments
            and parameter.default is inspect.Parameter.empty
            and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ):
            arguments[parameter_name] = None
    result: Awaitable[Any] = method(**arguments)
    return result


async def reset_context(context: Any, pages: list[Any], plan: ResetPlan) -> None:
    """Carry out a reset plan on a context and its open pages (both impl objects)."""
    if plan.origins:
        session = await call(context, "new_cdp_session", page=pages[0])
        # Each origin's localStorage, IndexedDB, caches and service workers live in
        # this context's storage partition only; other contexts keep theirs.
        clear_storage = (
            call(
                session,
                "send",
                method="Storage.clearDataForOrigin",
                params={"origin": origin, "storageTypes": "all"},
            )
            for origin in plan.origins
        )
        # Storage.clearDataForOrigin leaves the HTTP cache alone, and a resource
        # served with max-age would reach the next lease without a request.
        # Chromium keeps one HTTP cache per context, so this clears only ours.
        clear_cache = call(
            session, "send", method="Network.clearBrowserCache", params=None
        )
        await asyncio.gather(*clear_storage, clear_cache)
        await call(session, "detach")
    await asyncio.gather(*(call(page, "close") for page in pages))
    # Timeout setters are plain functions; the other restores are coroutines.
    results = [call(context, name, **args) for name, args in plan.restore]
    await asyncio.gather(*(result for result in results if inspect.isawaitable(result)))
    if plan.grant:
        await call(context, "grant_permissions", permissions=list(plan.grant))


async def close(impl: Any) -> None:
    """Close a context or page (implementation object)."""
    await call(impl, "close")


def run_sync(owner: Any, coroutine: Awaitable[Any], timeout: float) -> Any:
    """Run a coroutine on a sync Playwright object's event loop, with a timeout."""
    return owner._sync(asyncio.wait_for(coroutine, timeout))


def impl(wrapper: Any) -> Any:
    """Return the implementation object behind a sync or async API object."""
    return wrapper._impl_obj


def is_timeout(error: BaseException) -> bool:
    return isinstance(error, (asyncio.TimeoutError, TimeoutError))
