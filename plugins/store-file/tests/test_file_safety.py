"""Crash and concurrency safety: killed writers, concurrent writers, unreadable entries."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tracklog.entities import Metric, Param, ViewType
from tracklog.errors import ErrorCode, TracklogError
from tracklog_store_file import yamlio
from tracklog_store_file.store import FileStore, open_store

WRITER = Path(__file__).with_name("file_writer.py")


def start_writer(root: Path, run_id: str, key: str, start: int, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(root), run_id, key, str(start), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def raw_lines(path: Path) -> tuple[list[str], bytes]:
    """Complete lines of a metric file, and the unterminated tail (if any)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    return data[:end].decode().splitlines(), data[end:]


def test_sigkill_mid_logging_loses_nothing_acknowledged(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    run_id = store.create_run("0", "me", 0, run_name="target").info.run_id
    writer = start_writer(root, run_id, "m", 0, -1)
    acked = -1
    assert writer.stdout is not None
    for line in writer.stdout:
        acked = int(line)
        if acked >= 300:  # 3,000 points acknowledged; the writer is still going
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert acked >= 300, writer.stderr.read() if writer.stderr else ""

    fresh = FileStore(str(root))
    history = fresh.get_metric_history(run_id, "m")
    values = [m.value for m in history]
    # A contiguous prefix: every acknowledged point, at most the batch in flight beyond.
    assert values == [float(i) for i in range(len(values))]
    assert len(values) >= (acked + 1) * 10
    assert [(m.timestamp, m.step) for m in history] == [(i, i) for i in range(len(values))]
    lines, tail = raw_lines(root / "0" / run_id / "metrics" / "m")
    assert len(lines) == len(values) and all(len(x.split(" ")) == 3 for x in lines)

    run = fresh.get_run(run_id)
    assert run.data.metrics["m"].value == values[-1]
    assert all(run.data.params[f"p{b}"] == str(b) for b in range(acked + 1))
    # Runs the writer created: each is complete, or (killed mid-creation) absent.
    listed = fresh.search_runs(["0"], run_view_type=ViewType.ALL, max_results=1000)
    names = {r.info.run_name for r in listed}
    assert {f"extra-m-{b}" for b in range(0, acked + 1, 25)} <= names
    complete = [d for d in (root / "0").iterdir() if (d / "meta.yaml").is_file()]
    assert len(listed) == len(complete)
    for r in listed:
        if r.info.run_name.startswith("extra-"):
            assert r.data.tags["mlflow.runName"] == r.info.run_name

    # Logging resumes cleanly after the crash, whatever the dead writer left.
    fresh.log_batch(run_id, metrics=[Metric("m", -1.0, 10**9, 10**9)])
    lines, tail = raw_lines(root / "0" / run_id / "metrics" / "m")
    assert tail == b"" and lines[-1] == "1000000000 -1.0 1000000000"
    assert fresh.get_run(run_id).data.metrics["m"].value == -1.0


def test_torn_last_line_is_ignored_then_cut_off(tmp_path: Path) -> None:
    # A write torn by a crash cannot be produced on demand; the torn bytes are written by
    # hand, exactly as a writer killed mid-write(2) would leave them.
    store = open_store(str(tmp_path / "mlruns"))
    run_id = store.create_run("0", "me", 0).info.run_id
    store.log_batch(run_id, metrics=[Metric("loss", 1.0, 1, 0), Metric("loss", 2.0, 2, 1)])
    path = tmp_path / "mlruns" / "0" / run_id / "metrics" / "loss"
    with open(path, "ab") as fh:
        fh.write(b"3 9.5")
    assert [m.value for m in store.get_metric_history(run_id, "loss")] == [1.0, 2.0]
    assert store.get_run(run_id).data.metrics["loss"].value == 2.0
    store.log_batch(run_id, metrics=[Metric("loss", 3.0, 3, 2)])
    assert path.read_text() == "1 1.0 0\n2 2.0 1\n3 3.0 2\n"
    assert [m.value for m in store.get_metric_history(run_id, "loss")] == [1.0, 2.0, 3.0]


def test_concurrent_processes_and_threads_never_interleave(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    run_id = store.create_run("0", "me", 0).info.run_id
    writers = [start_writer(root, run_id, "shared", start, 60) for start in (0, 100_000)]

    def thread_writer(offset: int) -> None:
        for i in range(offset, offset + 300):
            store.log_batch(
                run_id, metrics=[Metric("shared", float(i), i, i)], params=[Param("same", "value")]
            )

    threads = [threading.Thread(target=thread_writer, args=(o,)) for o in (200_000, 300_000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    lines, tail = raw_lines(root / "0" / run_id / "metrics" / "shared")
    assert tail == b""
    assert all(len(line.split(" ")) == 3 for line in lines)
    expected = sorted(
        [float(i) for s in (0, 100_000) for i in range(s, s + 600)]
        + [float(i) for o in (200_000, 300_000) for i in range(o, o + 300)]
    )
    assert sorted(m.value for m in store.get_metric_history(run_id, "shared")) == expected
    assert store.get_run(run_id).data.params["same"] == "value"
    assert not [p for p in (root / "0" / run_id).rglob(".tmp-*")]


def test_unreadable_entries_are_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    exp = store.create_experiment("healthy")
    good = store.create_run(exp, "me", 1).info.run_id
    bad = store.create_run(exp, "me", 2).info.run_id
    store.log_batch(good, metrics=[Metric("m", 1.0, 1, 0)])
    (root / exp / bad / "meta.yaml").write_text("run_id: [unclosed\n")
    (root / exp / ("f" * 32)).mkdir()  # a run folder whose meta.yaml was never written
    broken_exp = store.create_experiment("broken")
    (root / broken_exp / "meta.yaml").write_text(": : :\n\t- nope")
    with open(root / exp / good / "metrics" / "m", "a") as fh:
        fh.write("not a metric line\n")

    with caplog.at_level(logging.WARNING, logger="tracklog_store_file"):
        runs = store.search_runs([exp])
        experiments = store.search_experiments()
        history = store.get_metric_history(good, "m")
    assert [r.info.run_id for r in runs] == [good]
    assert broken_exp not in {e.experiment_id for e in experiments}
    assert exp in {e.experiment_id for e in experiments}
    assert [m.value for m in history] == [1.0]
    logged = caplog.text
    assert str(root / exp / bad / "meta.yaml") in logged
    assert str(root / broken_exp / "meta.yaml") in logged
    assert str(root / exp / good / "metrics" / "m") in logged

    # The caller learns which record is unreadable; the file's path stays in the log.
    with pytest.raises(TracklogError) as excinfo:
        store.get_run(bad)
    assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert f"Run {bad} cannot be read" in excinfo.value.message
    assert str(tmp_path) not in excinfo.value.message
    with pytest.raises(TracklogError) as excinfo:
        store.get_experiment(broken_exp)
    assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert f"Experiment {broken_exp} cannot be read" in excinfo.value.message
    assert str(tmp_path) not in excinfo.value.message
    with pytest.raises(TracklogError) as excinfo:
        store.get_run("f" * 32)
    assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST


def test_out_of_range_integers_on_disk_are_skipped_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run whose meta.yaml holds a start time beyond int64 (earlier versions wrote such
    files) and a metric line with such a timestamp never make the experiment unreadable:
    searches leave them out with a warning naming the file, and reading that run is a
    404 that says why."""
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    exp = store.create_experiment("bounds")
    good = store.create_run(exp, "me", 1).info.run_id
    bad = store.create_run(exp, "me", 2).info.run_id
    store.log_batch(good, metrics=[Metric("m", 1.0, 1, 0)])
    meta = root / exp / bad / "meta.yaml"
    meta.write_text(meta.read_text().replace("start_time: 2", f"start_time: {2**64}"))
    with open(root / exp / good / "metrics" / "m", "a") as fh:
        fh.write(f"{2**64} 2.0 0\n1 3.0 {2**63}\n")
    store.close()
    store = open_store(str(root))

    with caplog.at_level(logging.WARNING, logger="tracklog_store_file"):
        runs = store.search_runs([exp])
        history = store.get_metric_history(good, "m")
        latest = store.get_run(good).data.metrics["m"]
    assert [r.info.run_id for r in runs] == [good]
    assert [(m.timestamp, m.step, m.value) for m in history] == [(1, 0, 1.0)]
    assert (latest.timestamp, latest.step, latest.value) == (1, 0, 1.0)
    assert str(meta) in caplog.text
    assert str(root / exp / good / "metrics" / "m") in caplog.text
    with pytest.raises(TracklogError) as excinfo:
        store.get_run(bad)
    assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert "start_time" in excinfo.value.message and str(tmp_path) not in excinfo.value.message


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    exp = store.create_experiment("tidy")
    run_id = store.create_run(exp, "me", 1).info.run_id
    store.log_batch(run_id, params=[Param("a/b", "1")])
    store.update_run_info(run_id, run_name="renamed")
    store.delete_run(run_id)
    store.restore_run(run_id)
    assert not list(root.rglob(".tmp-*"))
    assert (root / exp / run_id / "params" / "a" / "b").read_text() == "1"


def test_yaml_backend_is_reported_and_switchable() -> None:
    import yaml

    assert yamlio.yaml_backend() == ("libyaml" if yaml.__with_libyaml__ else "pure")
    try:
        assert yamlio.set_backend("pure") == "pure"
        assert yamlio.loads(yamlio.dumps({"b": 1, "a": "x"})) == {"a": "x", "b": 1}
        assert yamlio.dumps({"b": 1, "a": None}) == "a: null\nb: 1\n"
    finally:
        yamlio.set_backend("libyaml")
    with pytest.raises(ValueError):
        yamlio.set_backend("fast")


def test_crashed_run_creation_is_invisible(tmp_path: Path) -> None:
    """A run folder without meta.yaml (creation interrupted) is absent everywhere."""
    root = tmp_path / "mlruns"
    store = open_store(str(root))
    half = root / "0" / ("a" * 32)
    for sub in ("metrics", "params", "tags", "artifacts"):
        (half / sub).mkdir(parents=True)
    (half / "tags" / "mlflow.runName").write_text("half")
    assert store.search_runs(["0"], run_view_type=ViewType.ALL) == []
    with pytest.raises(TracklogError) as excinfo:
        store.get_run("a" * 32)
    assert excinfo.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST
    assert os.path.isdir(half)


def test_two_store_objects_on_one_directory_agree(tmp_path: Path) -> None:
    """Each object caches what it wrote; the other's appends must still be seen."""
    a = open_store(str(tmp_path / "mlruns"))
    b = FileStore(str(tmp_path / "mlruns"))
    run_id = a.create_run("0", "me", 0).info.run_id
    a.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 1)])
    b.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 1), Metric("m", 2.0, 2, 2)])
    a.log_batch(run_id, metrics=[Metric("m", 2.0, 2, 2), Metric("m", 3.0, 3, 3)])
    b.log_batch(run_id, metrics=[Metric("m", 0.5, 9, 0)])  # older step: not the latest
    for store in (a, b):
        assert [m.value for m in store.get_metric_history(run_id, "m")] == [1.0, 2.0, 3.0, 0.5]
        assert store.get_run(run_id).data.metrics["m"].value == 3.0
    a.log_batch(run_id, params=[Param("p", "1")])
    with pytest.raises(TracklogError) as excinfo:
        b.log_batch(run_id, params=[Param("p", "2")])
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    b.delete_run(run_id)
    with pytest.raises(TracklogError) as excinfo:
        a.log_batch(run_id, metrics=[Metric("m", 4.0, 4, 4)])
    assert excinfo.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE


@pytest.mark.parametrize("pattern", ["%%%b", "%" * 5000 + "b", "%a%a%a%a%a%a%a%a%a%b"])
def test_like_search_on_a_long_value_answers_at_once(tmp_path: Path, pattern: str) -> None:
    """A LIKE pattern with many '%' against a 6,000-character param used to backtrack for
    minutes in the worker thread, holding the GIL (the whole server stalled and ignored
    SIGTERM); it is now answered at once, and correctly."""
    from tracklog.search import parse_run_filter

    store = FileStore(str(tmp_path / "mlruns"))
    exp = store.create_experiment("like")
    run_id = store.create_run(exp, "u", 1).info.run_id
    store.log_batch(run_id, params=[Param("p", "a" * 6000)])
    assert list(store.search_runs([exp], parse_run_filter(f"params.p LIKE '{pattern}'"))) == []
    hit = parse_run_filter(f"params.p LIKE '{pattern[:-1]}a'")
    assert [r.info.run_id for r in store.search_runs([exp], hit)] == [run_id]
