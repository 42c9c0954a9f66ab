"""`tracklog db backup`: a consistent copy of a SQLite database taken while a writer
commits, that opens as a tracklog store; other databases get the command to use."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from tracklog.entities import Metric
from tracklog_store_sql.store import SqlTrackingStore

TRACKLOG = str(Path(sys.executable).with_name("tracklog"))


def _tracklog(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRACKLOG, *args], capture_output=True, text=True, timeout=120)


def test_backup_while_a_writer_commits_is_consistent_and_opens(tmp_path):
    url = f"sqlite:///{tmp_path}/live.db"
    store = SqlTrackingStore(url, "mlflow-artifacts:/")
    run_id = store.create_run("0", "u", 0, run_name="busy").info.run_id
    stop = threading.Event()
    batches = 0

    def write() -> None:
        nonlocal batches
        while not stop.is_set():
            # 100 points per transaction: a consistent copy holds whole batches only.
            store.log_batch(run_id, metrics=[
                Metric("loss", float(i), batches * 100 + i, batches * 100 + i)
                for i in range(100)])
            batches += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while batches < 20:
            stop.wait(0.01)
        done = _tracklog("db", "backup", url, str(tmp_path / "copy.db"))
    finally:
        stop.set()
        writer.join()
        store.close()
    assert done.returncode == 0, done.stderr
    assert "Backed up" in done.stdout

    copy = SqlTrackingStore(f"sqlite:///{tmp_path}/copy.db", "mlflow-artifacts:/")
    try:
        points = list(copy.get_metric_history(run_id, "loss"))
        assert copy.get_run(run_id).info.run_name == "busy"
    finally:
        copy.close()
    assert len(points) >= 2000 and len(points) % 100 == 0
    assert [p.step for p in points] == list(range(len(points)))
    assert not list(tmp_path.glob(".tracklog-tmp-*"))


def test_backup_refuses_to_overwrite_and_names_other_tools(tmp_path):
    url = f"sqlite:///{tmp_path}/a.db"
    SqlTrackingStore(url, "mlflow-artifacts:/").close()
    (tmp_path / "taken.db").write_bytes(b"keep me")
    taken = _tracklog("db", "backup", url, str(tmp_path / "taken.db"))
    assert taken.returncode != 0 and "already exists" in taken.stderr
    assert (tmp_path / "taken.db").read_bytes() == b"keep me"

    missing = _tracklog("db", "backup", f"sqlite:///{tmp_path}/nope.db", str(tmp_path / "x.db"))
    assert missing.returncode != 0 and "No SQLite database file" in missing.stderr

    pg = _tracklog("db", "backup", "postgresql://u:secret@db.example/prod", str(tmp_path / "p"))
    assert pg.returncode != 0 and "pg_dump" in pg.stderr
    assert "secret" not in pg.stderr
