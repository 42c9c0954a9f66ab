import uuid

import pytest

from tracklog.plugins import resolve_repository
from tracklog.testing.artifacts import ArtifactRepositoryConformance, ArtifactRequirements
from tracklog_artifacts_s3.repository import S3ArtifactRepository


class TestS3ArtifactRepository(ArtifactRepositoryConformance):
    # moto accepts parts to presigned URLs but checks no signature, so no expiry either.
    requirements = ArtifactRequirements(
        multipart_upload=True,
        presigned_download=True,
        presigned_expiry_enforced=False,
        listing_page_size=1000,
    )

    @pytest.fixture
    def repo(self, bucket):
        repo = resolve_repository(f"s3://{bucket}/runs/{uuid.uuid4().hex}")
        assert isinstance(repo, S3ArtifactRepository)
        yield repo


class TestS3BucketRoot(ArtifactRepositoryConformance):
    """A repository at the root of a bucket: keys have no prefix at all."""

    requirements = ArtifactRequirements(large_files=False)

    @pytest.fixture
    def repo(self, bucket):
        yield resolve_repository(f"s3://{bucket}")
