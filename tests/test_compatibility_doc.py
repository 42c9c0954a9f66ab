"""``docs/compatibility.md`` held to the app's route tables.

Its route tables mark each route ``yes`` (served) or ``no``. Every route the server mounts
must appear on a ``yes`` row, every ``yes`` route must be mounted, and no ``no`` route may
be: adding or dropping a route fails here until the page says so. The page also names the
MLflow client version it was derived from, which must be the one installed.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from tracklog.server.app import TRACKING_TABLES
from tracklog.server.routes import artifacts, meta

DOC = Path(__file__).resolve().parents[1] / "docs" / "compatibility.md"
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`")


def served_routes() -> set[tuple[str, str]]:
    """(method, path) for each route the app mounts, as the client sends it."""
    routes = set()
    for table in (meta.table, *TRACKING_TABLES, artifacts.proxy):
        for spec in table.rpcs:
            path = spec.path.replace(":path}", "}")
            for v in spec.versions or (None,):
                routes.add((spec.method, f"/api/{v}{path}" if v else path))
    return routes


def documented_routes() -> dict[str, set[tuple[str, str]]]:
    """The routes on the page's ``yes`` and ``no`` rows (first cell: routes, second: mark)."""
    marked: dict[str, set[tuple[str, str]]] = {"yes": set(), "no": set()}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[1] in marked:
            marked[cells[1]].update(ROUTE.findall(cells[0]))
    return marked


def test_table_parses() -> None:
    marked = documented_routes()
    assert len(marked["yes"]) >= 80 and len(marked["no"]) >= 80, {
        k: len(v) for k, v in marked.items()}


def test_every_served_route_is_documented_as_served() -> None:
    missing = served_routes() - documented_routes()["yes"]
    assert not missing, f"served but not on a 'yes' row of {DOC.name}: {sorted(missing)}"


def test_no_documented_route_contradicts_the_app() -> None:
    served, marked = served_routes(), documented_routes()
    stale = marked["yes"] - served
    assert not stale, f"marked 'yes' in {DOC.name} but not served: {sorted(stale)}"
    now_served = marked["no"] & served
    assert not now_served, f"marked 'no' in {DOC.name} but served: {sorted(now_served)}"


def test_names_the_installed_client_version() -> None:
    client = version("mlflow-skinny")
    assert f"**{client}**" in DOC.read_text().split("\n## ", 1)[0], (
        f"{DOC.name} was derived from another client than the installed {client}")
