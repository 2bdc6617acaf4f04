"""Soak mode: run a test function many times in one browser and fail on growth.

A cache that fills once and a leak that grows forever look alike after one run. Run
the function N times, sample open contexts, open pages, renderer processes and PSS
after each repetition, leave out a warm-up, and fit a least-squares line to the
rest: a leak grows at a steady rate, a filled cache does not grow any more.

The function runs N times inside one pytest call, so its function-scoped fixtures are
set up once and shared by every repetition.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pytest_ctxleak.procs import format_size
from pytest_ctxleak.report import Leak
from pytest_ctxleak.settings import Soak
from pytest_ctxleak.sites import Site

# Series sampled after each repetition, with their names in messages.
SERIES = {
    "contexts": "open contexts",
    "pages": "open pages",
    "renderers": "renderer processes",
    "pss": "browser memory (PSS)",
}


# A slope fails only when it is also this many standard errors above zero, so that
# samples scattered around a flat level do not fail by chance. In the tests here,
# summed PSS scattered by up to 100 MiB between samples as renderers started and
# exited.
SIGNIFICANCE = 3.0


class Fit(NamedTuple):
    """A least-squares line through one series: its slope per repetition and the
    slope's standard error (0.0 for fewer than three points)."""

    slope: float
    stderr: float

    def grows(self, limit: float) -> bool:
        """Tell whether the slope is above ``limit`` and clearly above noise."""
        return self.slope > limit and self.slope > SIGNIFICANCE * self.stderr


def fit_line(values: Sequence[float]) -> Fit:
    """Fit a least-squares line to ``values`` against 0, 1, 2, ...

    Fewer than two values have no slope, and a slope of 0.0 is returned.
    """
    count = len(values)
    if count < 2:
        return Fit(0.0, 0.0)
    mean_x = (count - 1) / 2
    mean_y = sum(values) / count
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    variance = sum((x - mean_x) ** 2 for x in range(count))
    slope = covariance / variance
    if count < 3:
        return Fit(slope, 0.0)
    residuals = sum(
        (y - (mean_y + slope * (x - mean_x))) ** 2 for x, y in enumerate(values)
    )
    stderr = math.sqrt(max(residuals, 0.0) / (count - 2) / variance)
    return Fit(slope, stderr)


def fit_slope(values: Sequence[float]) -> float:
    """Return the least-squares slope of ``values`` against 0, 1, 2, ..."""
    return fit_line(values).slope


@dataclass
class SoakRun:
    """One test's soak: its settings and what each repetition left behind."""

    soak: Soak
    # Series name -> one value per finished repetition. A series is missing when
    # it could not be sampled (no local browser for renderers and PSS).
    series: dict[str, list[float]] = field(default_factory=dict)
    done: int = 0  # repetitions that returned
    failed_at: int | None = None  # the repetition that raised, counted from 1
    # Series that missed a sample; a gap would shift every later point, so such a
    # series is left out of the verdict.
    dropped: set[str] = field(default_factory=set)

    def record(self, sample: dict[str, float | None]) -> None:
        self.done += 1
        for name, value in sample.items():
            if name in self.dropped:
                continue
            values = self.series.setdefault(name, [])
            if value is None or len(values) != self.done - 1:
                self.dropped.add(name)
                del self.series[name]
                continue
            values.append(value)

    def figures(self) -> dict[str, object]:
        """Return the run for the per-test figures, as JSON-safe values."""
        return {
            "repetitions": self.soak.repeat,
            "warmup": self.soak.warmup,
            "done": self.done,
            "series": {name: list(values) for name, values in self.series.items()},
            "slopes": {
                name: fit_slope(values[self.soak.warmup :])
                for name, values in self.series.items()
            },
            "slope_errors": {
                name: fit_line(values[self.soak.warmup :]).stderr
                for name, values in self.series.items()
            },
        }


def repeating(
    function: Callable[..., Any], run: SoakRun, sample: Callable[[], dict[str, Any]]
) -> Callable[..., Any]:
    """Wrap a test function to run ``run.soak.repeat`` times, sampling after each."""
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def repeated_coroutine(*args: Any, **kwargs: Any) -> None:
            for index in range(run.soak.repeat):
                try:
                    await function(*args, **kwargs)
                except BaseException:
                    run.failed_at = index + 1
                    raise
                run.record(sample())

        return repeated_coroutine

    @functools.wraps(function)
    def repeated(*args: Any, **kwargs: Any) -> None:
        for index in range(run.soak.repeat):
            try:
                function(*args, **kwargs)
            except BaseException:
                run.failed_at = index + 1
                raise
            run.record(sample())

    return repeated


def _level(name: str, value: float) -> str:
    return format_size(value) if name == "pss" else f"{value:g}"


def _rate(name: str, slope: float) -> str:
    return f"{format_size(slope)}" if name == "pss" else f"{slope:.2f}"


def soak_findings(run: SoakRun, site: Site) -> list[Leak]:
    """Return one finding when any series grew faster than its limit.

    Nothing is judged when a repetition raised: the test failed already, and the
    series is shorter than the warm-up promised.
    """
    soak = run.soak
    if run.failed_at is not None or run.done < soak.repeat:
        return []
    lines = []
    failing = []
    for name, values in run.series.items():
        fit = fit_line(values[soak.warmup :])
        slope = fit.slope
        limit = soak.max_memory_slope if name == "pss" else soak.max_slope
        level = values[soak.warmup - 1] if soak.warmup else values[0]
        line = (
            f"{SERIES[name]}: {_rate(name, slope)} per repetition "
            f"(standard error {_rate(name, fit.stderr)}), from "
            f"{_level(name, level)} after the warm-up to {_level(name, values[-1])}"
            f" (limit {_rate(name, limit)})"
        )
        lines.append(line)
        if fit.grows(limit):
            failing.append((name, slope, limit, level))
    if not failing:
        return []
    name, slope, limit, level = failing[0]
    others = f" (and {len(failing) - 1} more series)" if len(failing) > 1 else ""
    headline = (
        f"soak: {SERIES[name]} grew by {_rate(name, slope)} per repetition over "
        f"repetitions {soak.warmup + 1} to {soak.repeat}, above the limit of "
        f"{_rate(name, limit)}{others}; warm-up level {_level(name, level)} after "
        f"{soak.warmup} repetition{'' if soak.warmup == 1 else 's'}"
    )
    details = (
        f"{soak.repeat} repetitions in one browser, {soak.warmup} of them warm-up",
        *lines,
        f"a series fails when its slope is above the limit and above "
        f"{SIGNIFICANCE:g} standard errors",
        "a cache that fills once stops growing after the warm-up; raise "
        "soak_warmup if it needs longer, or the limits with soak_max_slope and "
        "soak_max_memory_slope",
    )
    return [Leak(headline, site, details, "test defined at")]
