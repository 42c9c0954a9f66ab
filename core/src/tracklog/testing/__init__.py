"""The tracklog conformance kit and test helpers for plugin authors.

- :mod:`tracklog.testing.artifacts`: ``ArtifactRepositoryConformance``.
- :mod:`tracklog.testing.tracking`: ``TrackingStoreConformance``.
- :func:`service_unavailable`: skip a test whose real service cannot be reached.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

SERVICE_UNAVAILABLE = "service unavailable:"

__all__ = [
    "SERVICE_UNAVAILABLE",
    "ArtifactRepositoryConformance",
    "ArtifactRequirements",
    "StoreRequirements",
    "TrackingStoreConformance",
    "service_unavailable",
]


def service_unavailable(service: str, reason: str) -> NoReturn:
    """Skip the current test because ``service`` cannot be reached or started.

    The skip reason starts with ``service unavailable:`` so CI can tell these skips from
    deliberate ones. With ``TRACKLOG_REQUIRE_SERVICES`` set (CI sets it) the test fails
    instead: in CI every service must start.
    """
    message = f"{SERVICE_UNAVAILABLE} {service}: {reason}"
    if os.environ.get("TRACKLOG_REQUIRE_SERVICES"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


from tracklog.testing.artifacts import (  # noqa: E402 - after the helper they may use
    ArtifactRepositoryConformance,
    ArtifactRequirements,
)
from tracklog.testing.tracking import StoreRequirements, TrackingStoreConformance  # noqa: E402
