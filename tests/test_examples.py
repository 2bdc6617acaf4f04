"""End-to-end test of examples/demo.py: the bookshop suite run leaky, then fixed.

The demo launches Chromium twice and serves the example site on 127.0.0.1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
LEAKY_SCRAPER = "examples/bookshop/bookshop_scraper/leaky_scraper.py"
FIXED_HEADING = "--- fixed scraper:"


def find_acquire_line(path: Path) -> int:
    """Return the number of the line that acquires a book's lease without ``with``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip() == "lease = pool.acquire()":
            return number
    raise AssertionError(f"no line 'lease = pool.acquire()' in {path}")


def test_demo_catches_leak_then_passes() -> None:
    completed = subprocess.run(
        [sys.executable, "examples/demo.py"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    acquire_line = find_acquire_line(REPOSITORY / LEAKY_SCRAPER)

    assert completed.returncode == 0, output
    assert f"{LEAKY_SCRAPER}:{acquire_line}" in output, output
    assert FIXED_HEADING in output, output
    leaky_output, fixed_output = output.split(FIXED_HEADING, 1)
    lease_ids = set(re.findall(r"^ctxleak: lease #(\d+) ", leaky_output, re.M))
    assert len(lease_ids) == 1, leaky_output
    assert "ctxleak: 1 finding in 1 test" in leaky_output, leaky_output
    assert re.search(r"^\d+ passed in [\d.]+s$", fixed_output, re.M), fixed_output
