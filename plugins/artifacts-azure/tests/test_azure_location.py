"""Parsing artifact URIs (no service needed)."""

from __future__ import annotations

import pytest

from tracklog_artifacts_azure.location import AzureLocation, parse_location


@pytest.mark.parametrize(("uri", "expected"), [
    ("wasbs://c@acct.blob.core.windows.net/a/b",
     AzureLocation("wasbs", "c", "acct", "acct.blob.core.windows.net", "a/b")),
    ("wasbs://c@acct.blob.core.windows.net",
     AzureLocation("wasbs", "c", "acct", "acct.blob.core.windows.net", "")),
    ("wasbs://c@ACCT.Blob.Core.Windows.Net/p/",
     AzureLocation("wasbs", "c", "acct", "acct.blob.core.windows.net", "p")),
    ("abfss://fs@acct.dfs.core.windows.net/x",
     AzureLocation("abfss", "fs", "acct", "acct.blob.core.windows.net", "x")),
    ("wasbs://c@acct.blob.core.chinacloudapi.cn/p",
     AzureLocation("wasbs", "c", "acct", "acct.blob.core.chinacloudapi.cn", "p")),
])
def test_parse(uri, expected):
    assert parse_location(uri) == expected


def test_keys_and_account_url():
    location = parse_location("abfss://fs@acct.dfs.core.windows.net/runs")
    assert location.account_url == "https://acct.blob.core.windows.net"
    assert location.key("") == "runs"
    assert location.key("a/b.txt") == "runs/a/b.txt"
    assert parse_location("wasbs://c@acct.blob.core.windows.net").key("a.txt") == "a.txt"


def test_loading_the_plugin_imports_no_azure_library():
    """Registration is cheap: azure.* is imported only when a repository is opened."""
    import subprocess
    import sys

    code = ("import sys; from tracklog.plugins import load_plugins, artifact_repository_factory;"
            " load_plugins(); artifact_repository_factory('wasbs://c@a.blob.core.windows.net/p');"
            " print(sorted(m for m in sys.modules if m.startswith('azure')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60, check=True).stdout
    assert out.strip() == "[]"
