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
