"""Exceptions that the pool raises to its callers."""

from __future__ import annotations


class CtxleakError(Exception):
    """Base class of every error pytest-ctxleak raises on purpose."""


class LeaseError(CtxleakError):
    """A lease was released twice, released to the wrong pool, or used after release."""


class PoolExhaustedError(CtxleakError):
    """Every context is in use and none was released before the acquire timed out."""


class PoolClosedError(CtxleakError):
    """The pool was closed before or while the acquire waited."""


class BrowserDisconnectedError(CtxleakError):
    """The pool's browser crashed, was killed or was closed."""
