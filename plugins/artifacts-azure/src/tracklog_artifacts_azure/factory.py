"""Which class a repository gets: with SAS-based capabilities when its credential can sign."""

from __future__ import annotations

from typing import Any

from tracklog_artifacts_azure.client import shared_client
from tracklog_artifacts_azure.location import parse_location
from tracklog_artifacts_azure.repository import AzureBlobArtifactRepository
from tracklog_artifacts_azure.signing import AzureSigningArtifactRepository


def open_repository(artifact_uri: str, **options: Any) -> AzureBlobArtifactRepository:
    """The repository for ``artifact_uri``: with SAS-based capabilities (presigned
    downloads, multipart uploads) when the credential can sign, without them otherwise."""
    location = parse_location(artifact_uri)
    credentials = options.pop("credentials", None) or shared_client(
        location, artifact_uri, **options.pop("client_options", None) or {}
    )
    cls = AzureSigningArtifactRepository if credentials[1].can_sign else AzureBlobArtifactRepository
    return cls(artifact_uri, credentials=credentials, **options)


