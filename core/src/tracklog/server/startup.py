"""Start-up work on the artifact destination, done once in the main process before any
worker starts: the usability check, and the sweep of temporary files that uploads
interrupted by a crash left behind."""

from __future__ import annotations

import logging
import os
import threading
import time
from urllib.parse import urlsplit

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


def check_plugins(config: ServerConfig) -> None:
    """The plugins' own start-up checks (``check_startup``): a refusal is a one-line
    ``TracklogError``."""
    from tracklog.plugins import call_hook

    call_hook("check_startup", config=config)


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


# --- the banner ------------------------------------------------------------------------

_SECRET_QUERY_KEYS = ("password", "secret", "token", "sig", "key", "credential")


def mask(uri: str) -> str:
    """``uri`` with its password and any secret-looking query value replaced by ``***``."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return uri
    if password:
        uri = uri.replace(f":{password}@", ":***@", 1)
    if parts.query:
        query = "&".join(
            f"{k}=***" if sep and any(s in k.lower() for s in _SECRET_QUERY_KEYS) else
            f"{k}{sep}{v}"
            for k, sep, v in (item.partition("=") for item in parts.query.split("&"))
        )
        uri = uri.replace("?" + parts.query, "?" + query, 1)
    return uri


def _where(location: str) -> str:
    """A store or artifact location as the operator should read it: a local path made
    absolute, anything else masked."""
    if len(urlsplit(location).scheme) <= 1:  # a plain path (or a Windows drive letter)
        return os.path.abspath(location)
    if location.startswith("file:"):
        return location
    if location.startswith("sqlite:///") and location[len("sqlite:///"):] not in ("", ":memory:"):
        path = location[len("sqlite:///"):].split("?", 1)[0]
        return f"{mask(location)} ({os.path.abspath(path)})"
    return mask(location)


def server_url(host: str, port: int, prefix: str = "") -> str:
    """The URL a browser or client on this machine opens for a server bound to
    ``host``: a wildcard address is reached through loopback."""
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host)
    if shown is None:
        shown = f"[{host}]" if ":" in host else host
    prefix = prefix.strip()
    prefix = "" if prefix in ("", "/") else "/" + prefix.strip("/")
    return f"http://{shown}:{port}{prefix}"


def banner(config: ServerConfig, host: str, port: int) -> str:
    """What the operator needs at start: where data goes, the URL, the plugins in use."""
    from tracklog import __version__
    from tracklog.plugins import plugin_infos, scheme_of

    infos = [i for i in plugin_infos() if not i.builtin]
    url = server_url(host, port, config.static_prefix)
    lines = [f"tracklog {__version__} serving on {url} (CTRL+C to quit)"]
    if host in ("", "0.0.0.0", "::"):
        lines.append(f"  listening on     every interface of this machine ({host or '*'}), "
                     f"port {port}")
    if config.artifacts_only:
        lines.append("  tracking store   none (--artifacts-only)")
    else:
        scheme = scheme_of(config.backend_store_uri)
        owner = next((i.name for i in infos for s in i.tracking_schemes
                      if s in (scheme, scheme.split("+", 1)[0])), None)
        lines.append(f"  tracking store   {_where(config.backend_store_uri)}"
                     + (f"  [{owner}]" if owner else ""))
    if config.serve_artifacts or config.artifacts_only:
        lines.append(f"  artifacts        {_where(config.artifacts_destination)}  "
                     "(clients reach it through this server, as mlflow-artifacts:/)")
        if config.default_artifact_root:
            lines.append(f"  new experiments  {mask(config.default_artifact_root)}")
    else:
        root = mask(config.default_artifact_root) if config.default_artifact_root else \
            "the tracking store's default"
        lines.append(f"  artifacts        not proxied: clients write them to {root}")
    lines.append(f"  clients          export MLFLOW_TRACKING_URI={url}")
    # Every plugin installed, wrapped between entries to fit a terminal of 100 columns.
    entries = [f"{i.name} {i.version}" if i.version else i.name for i in infos] or ["none"]
    row = "  plugins          "
    for n, entry in enumerate(entries):
        entry += "," if n < len(entries) - 1 else ""
        if len(row) + len(entry) > 100 and row.strip() != "plugins":
            lines.append(row.rstrip())
            row = " " * 19
        row += entry + " "
    lines.append(row.rstrip())
    lines.append("  request log      " + ("on (--quiet turns it off)" if config.access_log
                                         else "off (--quiet)"))
    from tracklog.server.app import auth_enabled

    lines.append("  authentication   " + (
        "on" if auth_enabled(config)
        else "off: whoever reaches this server can read and write, as with mlflow server"))
    return "\n".join(lines)
