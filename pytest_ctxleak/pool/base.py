"""What the sync and async pools share: holders, the registry of open pools, settings.

The pools themselves only carry out the ledger's decisions on real contexts. This
module contains the parts that are neither Playwright calls nor ledger rules.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from typing import Any, Protocol
from urllib.parse import urlsplit

from pytest_ctxleak.errors import LeaseError
from pytest_ctxleak.ledger import NO_HOLDER, Holder, LeaseRecord, Ledger

logger = logging.getLogger("pytest_ctxleak")

DEFAULT_MAX_CONTEXTS = 8
DEFAULT_ACQUIRE_TIMEOUT = 30.0
DEFAULT_CLOSE_TIMEOUT = 10.0

_holder: ContextVar[Holder] = ContextVar("ctxleak_holder", default=NO_HOLDER)


# True while a pool creates a context, so the watch can tell the pool's contexts from
# those the code under test makes itself. Tasks copy it when they are created.
_pool_creation: ContextVar[bool] = ContextVar("ctxleak_pool_creation", default=False)


def is_pool_creation() -> bool:
    """Tell whether the context being created now is a pool's."""
    return _pool_creation.get()


@contextlib.contextmanager
def creating_for_pool() -> Iterator[None]:
    """Mark contexts created inside the block as a pool's own."""
    token = _pool_creation.set(True)
    try:
        yield
    finally:
        _pool_creation.reset(token)


def current_holder() -> Holder:
    """Return the test or fixture that a lease taken now would belong to."""
    return _holder.get()


def set_holder(holder: Holder) -> Token[Holder]:
    """Attribute leases taken from now on to ``holder``; undo with ``reset_holder``."""
    return _holder.set(holder)


def reset_holder(token: Token[Holder]) -> None:
    _holder.reset(token)


@contextlib.contextmanager
def holding(holder: Holder) -> Iterator[None]:
    """Attribute every lease taken inside the block to ``holder``."""
    token = _holder.set(holder)
    try:
        yield
    finally:
        _holder.reset(token)


class PoolLike(Protocol):
    """The interface the leak check reads from any pool, sync or async."""

    ledger: Ledger

    def reclaim(self, record: LeaseRecord, by: str) -> str: ...

    def contexts(self) -> list[Any]: ...


# Pools that are open, so the leak check can find pools made by the code under test.
# A pool with open contexts is a live resource even when nothing else refers to it,
# so the registry holds strong references until close().
_open_pools: dict[int, PoolLike] = {}
_registry_lock = threading.Lock()
_listeners: list[Callable[[PoolLike], None]] = []


def open_pools() -> list[PoolLike]:
    """Return the pools that are not closed, oldest first."""
    with _registry_lock:
        return list(_open_pools.values())


def add_pool_listener(listener: Callable[[PoolLike], None]) -> None:
    """Call ``listener`` with every pool created from now on."""
    _listeners.append(listener)


def remove_pool_listener(listener: Callable[[PoolLike], None]) -> None:
    with contextlib.suppress(ValueError):
        _listeners.remove(listener)


def register_pool(pool: PoolLike) -> None:
    with _registry_lock:
        _open_pools[id(pool)] = pool
    for listener in list(_listeners):
        listener(pool)


def unregister_pool(pool: PoolLike) -> None:
    with _registry_lock:
        _open_pools.pop(id(pool), None)


def validate_timeout(name: str, value: object) -> float:
    """Return ``value`` as seconds, or raise naming the option and the value."""
    __tracebackhide__ = True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds, got {value!r}; pass e.g. 30.0"
        )
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(
            f"{name} must be a positive, finite number of seconds, got {value!r}"
        )
    return float(value)


def origin_of(url: str) -> str | None:
    """Return ``scheme://host:port`` for http(s) URLs, the only ones with storage."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def describe_error(error: BaseException) -> str:
    """Return a one-line description of an error for logs and reports."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def thread_name(ident: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return f"thread {ident}"


def reject_other_thread(owner_ident: int, what: str) -> None:
    """Raise if called from a thread other than the pool's own."""
    __tracebackhide__ = True
    if threading.get_ident() != owner_ident:
        raise LeaseError(
            f"{what} from {threading.current_thread().name}, but this ContextPool "
            f"belongs to {thread_name(owner_ident)}: Playwright's sync objects "
            "cannot cross threads. Create one browser and pool per thread, or use "
            "AsyncContextPool."
        )
