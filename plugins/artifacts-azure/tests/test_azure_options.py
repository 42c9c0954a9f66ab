"""The URL lifetimes are plugin options: their own variables, the older names still read,
and the flags ``tracklog server`` gains."""

from __future__ import annotations

import pytest

from tracklog.errors import TracklogError
from tracklog.plugins import plugin_infos
from tracklog_artifacts_azure.options import DOWNLOAD_TTL, UPLOAD_TTL


@pytest.mark.parametrize(("option", "own", "older", "default"), [
    (DOWNLOAD_TTL, "TRACKLOG_ARTIFACTS_AZURE_PRESIGNED_DOWNLOAD_TTL",
     "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS", 300),
    (UPLOAD_TTL, "TRACKLOG_ARTIFACTS_AZURE_UPLOAD_URL_TTL", "TRACKLOG_AZURE_UPLOAD_URL_TTL", 3600),
])
def test_lifetimes_read_both_names(option, own, older, default):
    assert option.variables == (own, older)
    assert option.read({}) == default
    assert option.read({older: "60"}) == 60
    assert option.read({own: "90", older: "60"}) == 90
    for bad in ("0", "soon", "1.5"):
        with pytest.raises(TracklogError, match=older):
            option.read({older: bad})


def test_lifetimes_are_listed_as_options():
    (info,) = [i for i in plugin_infos() if i.name == "artifacts-azure"]
    assert [o["flag"] for o in info.options] == [
        "--artifacts-azure-presigned-download-ttl", "--artifacts-azure-upload-url-ttl"]
