"""The artifact conformance kit against Azurite, through the registered plugin."""

from __future__ import annotations

import pytest

from tracklog.plugins import resolve_repository
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements
from tracklog_artifacts_azure.factory import open_repository

# Two entries per listing page: every listing of the standard tree spans several pages.
PAGE_SIZE = 2


class TestAzureBlobRepository(ArtifactRepositoryConformance):
    requirements = ArtifactRequirements(
        empty_directories=False, large_files=True, multipart_upload=True,
        presigned_download=True, presigned_expiry_enforced=True, listing_page_size=PAGE_SIZE,
    )

    @pytest.fixture
    def repo(self, azure_env, prefix):
        yield open_repository(azure_env.uri(prefix), results_per_page=PAGE_SIZE)


class TestAzureBlobRepositoryAtContainerRoot(ArtifactRepositoryConformance):
    """A URI without a prefix: the repository is the whole container."""

    requirements = ArtifactRequirements(empty_directories=False, large_files=False)

    @pytest.fixture
    def repo(self, azure_env, prefix):
        azure_env.service().create_container(prefix)
        yield resolve_repository(azure_env.uri("", container=prefix))
        azure_env.service().delete_container(prefix)


class TestAzureBlobRepositoryThroughAbfss(ArtifactRepositoryConformance):
    """The abfss:// code path (folder-blob aware listing and deletes) on a flat container:
    Azurite has no hierarchical namespace."""

    requirements = ArtifactRequirements(empty_directories=False, large_files=False)

    @pytest.fixture
    def repo(self, azure_env, prefix):
        yield resolve_repository(azure_env.uri(prefix, scheme="abfss"))
