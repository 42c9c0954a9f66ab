"""The artifact conformance kit against fake-gcs-server."""

import pytest

from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements
from tracklog_artifacts_gcs.repository import GCSArtifactRepository

#: Small enough that the kit's listings span several service pages.
LIST_PAGE_SIZE = 3


class TestGCSRepository(ArtifactRepositoryConformance):
    # fake-gcs-server serves signed URLs without checking their expiry.
    requirements = ArtifactRequirements(
        empty_directories=False, large_files=True, multipart_upload=True,
        presigned_download=True, presigned_expiry_enforced=False,
        listing_page_size=LIST_PAGE_SIZE,
    )

    @pytest.fixture
    def repo(self, repo_uri, signing_key):
        yield GCSArtifactRepository(repo_uri, list_page_size=LIST_PAGE_SIZE)
