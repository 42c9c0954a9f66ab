"""End-to-end fixtures for the UI: a real ``tracklog server`` (under a static prefix),
seeded through the real MLflow client, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tracklog.testing import service_unavailable
from tracklog.testing.server import start_server as start_tracklog

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PREFIX = "/tracklog"


def start_server(tmp: Path, prefix: str = PREFIX) -> tuple[subprocess.Popen, str]:
    server = start_tracklog("--backend-store-uri", f"sqlite:///{tmp}/ui.db",
                            "--artifacts-destination", str(tmp / "artifacts"),
                            prefix=prefix, cwd=tmp, log=tmp / "server.log")
    return server.process, server.url


def png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG (red pixels), made without an imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                                             0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass
class Seeded:
    url: str
    experiment_id: str
    other_experiment_id: str
    runs: dict[str, str] = field(default_factory=dict)  # run name -> run id
    files: dict[str, bytes] = field(default_factory=dict)  # artifact path -> bytes
    model: str = "ui-model"
    logged_model: str = ""


def seed(url: str, tmp: Path) -> Seeded:
    import mlflow
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

    client = mlflow.MlflowClient(url)
    exp = client.create_experiment("ui-main", tags={"team": "vision"})
    other = client.create_experiment("ui-other")
    s = Seeded(url, exp, other)
    for i in range(30):
        run = client.create_run(exp, run_name=f"run-{i:02d}")
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric("loss", 1.0 / (i + 1) + j * 0.01, 1000 + j, j)
                                       for j in range(20)]
                         + [Metric("acc", i / 30, 1000, 0)],
                         params=[Param("lr", str(0.001 * (i + 1))), Param("depth", str(i % 4))],
                         tags=[RunTag("kind", "even" if i % 2 == 0 else "odd")])
        client.set_terminated(rid)
        s.runs[f"run-{i:02d}"] = rid
    parent = s.runs["run-00"]
    child = client.create_run(exp, run_name="child-a",
                              tags={"mlflow.parentRunId": parent})
    client.log_metric(child.info.run_id, "loss", 0.5)
    s.runs["child-a"] = child.info.run_id
    o = client.create_run(other, run_name="other-run")
    client.log_metric(o.info.run_id, "loss", 0.25)
    s.runs["other-run"] = o.info.run_id

    files = {
        "notes/train.log": b"epoch 1 loss=0.9\nepoch 2 loss=0.5\n",
        "config.json": json.dumps({"lr": 0.01, "layers": [64, 32]}).encode(),
        "plots/curve.png": png(),
        "table.csv": b"a,b\n1,x\n2,y\n",
    }
    local = tmp / "upload"
    for path, data in files.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(data)
    client.log_artifacts(parent, str(local))
    s.files = files
    dataset = Dataset("train-set", "abc123", "local", '{"uri": "/data/train.csv"}')
    client.log_inputs(parent, datasets=[
        DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])])
    s.logged_model = client.create_logged_model(exp, name="tiny-model", source_run_id=parent,
                                                model_type="sklearn").model_id

    client.create_registered_model(s.model, tags={"owner": "ml"})
    client.create_model_version(s.model, f"runs:/{parent}/model", run_id=parent)
    client.create_model_version(s.model, f"runs:/{parent}/model", run_id=parent)
    client.set_registered_model_alias(s.model, "champion", "1")
    return s


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp("ui-server")
    process, url = start_server(tmp)
    try:
        yield seed(url, tmp)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium for one module: Playwright's sync API holds an event loop in the main
    thread while it runs, which later tests' own asyncio/anyio loops must not meet."""
    if not os.path.exists(CHROMIUM):
        service_unavailable("chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.ui_failed = report.failed  # type: ignore[attr-defined]


@pytest.fixture
def page(browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A fresh page (1440×900); its screenshot lands in the test's tmp dir on failure."""
    context = browser.new_context(viewport={"width": 1440, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    if getattr(request.node, "ui_failed", False):
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot: {tmp_path / 'failure.png'}")
    context.close()
