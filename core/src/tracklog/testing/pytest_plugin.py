"""pytest plugin of the conformance kit (entry point ``pytest11``).

It reports, at the end of a run, every test skipped because a real service could not be
reached, so such a skip is never mistaken for a pass.
"""

from __future__ import annotations

from tracklog.testing import SERVICE_UNAVAILABLE


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    missing = sorted(
        {str(r.longrepr[2]) for r in skipped
         if isinstance(r.longrepr, tuple) and SERVICE_UNAVAILABLE in str(r.longrepr[2])}
    )
    if missing:
        terminalreporter.section("tracklog: services that could not be reached")
        for reason in missing:
            terminalreporter.line(reason)
