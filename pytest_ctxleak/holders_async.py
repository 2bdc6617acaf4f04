"""Holders for coroutines that pytest does not run in the calling context.

anyio's pytest plugin runs every test and async fixture inside one long-lived runner
task, whose context variables were copied when that task started. A holder set by a
hook in pytest's own context never reaches it, so these wrappers set the holder
inside the coroutine itself, in whatever task runs it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from pytest_ctxleak.ledger import Holder
from pytest_ctxleak.pool.base import current_holder, reset_holder, set_holder

# Whether each function seen is a coroutine or async generator function. The
# check runs for every fixture and test, and inspect is slow at it.
_async_functions: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def is_async(function: object) -> bool:
    """Tell whether ``function`` is a coroutine or an async generator function."""
    key = getattr(function, "__func__", function)  # one entry for all bound methods
    try:
        return _async_functions[key]
    except KeyError:
        pass
    except TypeError:  # not weakly referable or not hashable: ask each time
        return _ask_async(function)
    answer = _ask_async(function)
    with contextlib.suppress(TypeError):
        _async_functions[key] = answer
    return answer


def _ask_async(function: object) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def with_holder(function: Callable[..., Any], holder: Holder) -> Callable[..., Any]:
    """Wrap a coroutine or async generator function to run under ``holder``.

    Other functions are returned unchanged.
    """
    if inspect.isasyncgenfunction(function):

        @functools.wraps(function)
        async def generator(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            produced = function(*args, **kwargs)
            # The setup part runs under the holder; while the tests run, the
            # runner task gets back the holder it had, and the teardown part
            # runs under the holder again.
            previous = current_holder()
            token = set_holder(holder)
            try:
                value = await produced.__anext__()
            finally:
                reset_holder(token)
                set_holder(previous)
            yield value
            token = set_holder(holder)
            try:
                async for _ in produced:
                    pass
            finally:
                reset_holder(token)

        return generator
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            token = set_holder(holder)
            try:
                return await function(*args, **kwargs)
            finally:
                reset_holder(token)

        return coroutine
    return function
