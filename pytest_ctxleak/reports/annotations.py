"""GitHub Actions workflow commands for leaks.

When ``GITHUB_ACTIONS`` is ``true``, the controller prints one ``::error`` line per
leak (``::warning`` in warn mode) at its acquisition or creation site, so the leak
shows on that line of the pull request's diff. Paths are relative to
``GITHUB_WORKSPACE`` (the checkout) when the file is inside it, else to the rootdir.
Escaping follows GitHub's workflow command rules: ``%``, ``\\r`` and ``\\n`` in the
message, and also ``:`` and ``,`` in property values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pytest_ctxleak.reports.record import WARNED, Record, display_path

# Annotation titles by kind of finding.
TITLES = {
    "lease": "lease never released",
    "browser": "browser left open",
    "context": "context left open",
    "page": "page left open",
    "over_cap": "contexts over the cap",
}


def annotations_enabled(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation_lines(
    records: Iterable[tuple[str, Record]], rootdir: Path, environ: Mapping[str, str]
) -> list[str]:
    """Return one workflow command per leak of the given (node id, record) pairs."""
    workspace = environ.get("GITHUB_WORKSPACE")
    lines = []
    for nodeid, record in records:
        command = "warning" if record["verdict"] == WARNED else "error"
        for leak in record.get("leaks", []):
            properties = []
            site = leak.get("site")
            if site is not None:
                path = Path(rootdir, site["file"])
                file = display_path(str(path), Path(workspace)) if workspace else None
                if file is None or os.path.isabs(file):
                    file = site["file"]
                properties.append(f"file={escape_property(file)}")
                properties.append(f"line={site['line']}")
            finding = TITLES.get(leak["kind"], leak["kind"])
            title = f"ctxleak: {finding} in {nodeid}"
            properties.append(f"title={escape_property(title)}")
            message = "\n".join([leak["message"], *leak.get("details", [])])
            lines.append(f"::{command} {','.join(properties)}::{escape_data(message)}")
    return lines
