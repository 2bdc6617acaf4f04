"""The benchmark page shows the figures of the committed results file.

benchmarks/run_all.py renders the tables between the ``figures:`` markers of
docs/benchmarks.md from benchmarks/results/latest.json. Rendering again here and
comparing catches a page edited by hand, or results committed without the page.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"


def load_run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "run_all", ROOT / "benchmarks" / "run_all.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_page_matches_results(tmp_path: Path) -> None:
    run_all = load_run_all()
    copy = tmp_path / "benchmarks.md"
    shutil.copy(PAGE, copy)
    combined = json.loads(RESULTS.read_text(encoding="utf-8"))
    written = run_all.render_page(combined, copy)
    assert written, "no figures: block of docs/benchmarks.md has results to render"
    assert copy.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8"), (
        "docs/benchmarks.md differs from what benchmarks/results/latest.json "
        "renders; run .venv/bin/python benchmarks/run_all.py --render-only"
    )


def test_every_renderer_has_a_block() -> None:
    run_all = load_run_all()
    text = PAGE.read_text(encoding="utf-8")
    missing = [
        name
        for name in run_all.RENDERERS
        if f"<!-- figures:{name} -->" not in text
        or f"<!-- /figures:{name} -->" not in text
    ]
    assert not missing, f"docs/benchmarks.md has no figures: block for {missing}"


# The hooks pytest calls once or more for every test.
PER_TEST_HOOKS = (
    "pytest_runtest_protocol",
    "pytest_runtest_logstart",
    "pytest_runtest_setup",
    "pytest_fixture_setup",
    "pytest_pyfunc_call",
    "pytest_runtest_call",
    "pytest_runtest_teardown",
    "pytest_fixture_post_finalizer",
    "pytest_runtest_makereport",
    "pytest_runtest_logreport",
    "pytest_report_teststatus",
    "pytest_runtest_logfinish",
)


def per_test_hooks(
    config: pytest.Config, plugins: list[object]
) -> set[tuple[str, bool]]:
    """Return (hook name, is a wrapper) of each per-test hook the plugins implement."""
    found = set()
    for name in PER_TEST_HOOKS:
        for impl in getattr(config.pluginmanager.hook, name).get_hookimpls():
            if any(impl.plugin is plugin for plugin in plugins):
                found.add((name, bool(impl.wrapper or impl.hookwrapper)))
    return found


def test_overhead_floor_mirrors_the_plugins_hooks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overhead benchmark's empty-hooks side has the plugin's per-test hooks."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "bench_overhead", ROOT / "benchmarks" / "bench_overhead.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    empty = ModuleType("empty_hooks")
    exec(bench.EMPTY_HOOKS, empty.__dict__)
    config = pytester.parseconfigure("-p", "ctxleak")
    manager = config.pluginmanager
    ours = [
        plugin
        for plugin in manager.get_plugins()
        if "ctxleak" in (manager.get_name(plugin) or "")
    ]
    manager.register(empty, "empty-hooks")
    try:
        assert per_test_hooks(config, ours) == per_test_hooks(config, [empty])
    finally:
        manager.unregister(empty)
