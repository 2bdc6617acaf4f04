"""The context pools: they carry out the ledger's decisions on real browser contexts."""

from pytest_ctxleak.pool.aio import AsyncContextPool, AsyncLease
from pytest_ctxleak.pool.base import (
    DEFAULT_ACQUIRE_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_CONTEXTS,
    PoolLike,
    current_holder,
    holding,
    open_pools,
)
from pytest_ctxleak.pool.slot import CloseProblem
from pytest_ctxleak.pool.sync import ContextPool, Lease

__all__ = [
    "DEFAULT_ACQUIRE_TIMEOUT",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_CONTEXTS",
    "AsyncContextPool",
    "AsyncLease",
    "CloseProblem",
    "ContextPool",
    "Lease",
    "PoolLike",
    "current_holder",
    "holding",
    "open_pools",
]
