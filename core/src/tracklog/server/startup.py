"""Start-up work on the artifact destination, done once in the main process before any
worker starts: the usability check, and the sweep of temporary files that uploads
interrupted by a crash left behind."""

from __future__ import annotations

import logging
import threading
import time

from tracklog.artifacts.base import ArtifactRepository
from tracklog.config import ServerConfig

log = logging.getLogger("tracklog.server")

#: An upload temporary untouched this long belongs to no live upload: every chunk a
#: worker receives updates its modification time, and the server's read timeouts end a
#: stalled upload long before. The margin also covers clock skew between hosts sharing
#: a network file system.
STALE_TEMP_AGE = 6 * 3600


def check_default_artifact_root(config: ServerConfig) -> None:
    """The configured root of new experiments follows the location rules (any host
    allowed: it is the operator's choice)."""
    if config.default_artifact_root:
        from tracklog.artifacts.locations import check_artifact_location

        check_artifact_location(config.default_artifact_root, "--default-artifact-root",
                                hosts=False)


def check_artifact_destination(config: ServerConfig) -> ArtifactRepository | None:
    """The proxied destination, verified (with a write probe if configured); None when
    the server does not serve artifacts. Raises a one-line ``TracklogError`` otherwise."""
    if not (config.serve_artifacts or config.artifacts_only):
        return None
    from tracklog.plugins import resolve_repository

    repo = resolve_repository(config.artifacts_destination)
    repo.verify(probe_write=config.verify_artifacts_write)
    return repo


def sweep_stale_temp_files(repo: ArtifactRepository) -> threading.Thread:
    """Remove stale upload temporaries in a background thread, so walking a large
    destination never delays the start."""

    def sweep() -> None:
        started = time.monotonic()
        try:
            removed = repo.remove_stale_temp_files(STALE_TEMP_AGE)
        except Exception:
            log.exception("sweeping stale upload temporary files failed")
            return
        if removed:
            log.warning("removed %d stale upload temporary files (untouched for %d h) in "
                        "%.1f s", removed, STALE_TEMP_AGE // 3600, time.monotonic() - started)

    thread = threading.Thread(target=sweep, name="tracklog-temp-sweep", daemon=True)
    thread.start()
    return thread
