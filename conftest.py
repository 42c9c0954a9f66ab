"""Suite-wide: how tests are spread over pytest-xdist workers.

The suite waits more than it computes (servers, emulators, databases), so it runs on two
workers (``-n 2 --dist loadgroup`` in the pytest options). A plugin's tests stay together on
one worker, because its session fixtures start one emulator or service per worker and
some of those services use a fixed directory; the end-to-end tests under ``tests/`` and the
core's tests are spread file by file. ``-n 0`` runs everything in one process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).parent


def _group(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "plugins":
        return "/".join(parts[:2])
    return "/".join(parts)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            group = _group(Path(item.path))
        except ValueError:  # a test outside the checkout (pytester's own runs)
            continue
        item.add_marker(pytest.mark.xdist_group(group))
