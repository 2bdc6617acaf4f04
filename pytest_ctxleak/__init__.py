"""pytest-ctxleak: a refcounted, capped pool of Playwright browser contexts, and a
pytest plugin that fails every test that leaks one."""

from pytest_ctxleak.errors import (
    BrowserDisconnectedError,
    CtxleakError,
    LeaseError,
    PoolClosedError,
    PoolExhaustedError,
)
from pytest_ctxleak.pool import AsyncContextPool, AsyncLease, ContextPool, Lease

__all__ = [
    "AsyncContextPool",
    "AsyncLease",
    "BrowserDisconnectedError",
    "ContextPool",
    "CtxleakError",
    "Lease",
    "LeaseError",
    "PoolClosedError",
    "PoolExhaustedError",
]
__version__ = "0.1.0"
