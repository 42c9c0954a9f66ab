"""Built-in plugin: artifacts in local or network-mounted directories (`file:`, plain paths)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracklog.plugins import hookimpl

if TYPE_CHECKING:
    from tracklog.artifacts import ArtifactRepository


def _factory(artifact_uri: str) -> ArtifactRepository:
    from tracklog.artifacts.local import LocalArtifactRepository

    return LocalArtifactRepository(artifact_uri)


@hookimpl
def register_artifact_repositories(register):
    register("file", _factory)
