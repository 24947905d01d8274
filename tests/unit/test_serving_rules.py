"""Serving rules without a server: payload validation, risk bands, the sticky split, the spool."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from ml_platform.serving.routing import PredictRequest, in_challenger_bucket, parse_bands, risk_band

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "payload, words",
    [
        ({}, "exactly one of"),
        ({"customer_ids": []}, "empty"),
        ({"rows": []}, "empty"),
        ({"customer_ids": ["a"], "rows": [{}]}, "exactly one of"),
        ({"customer_ids": ["a"], "x": 1}, "Extra inputs"),
        ({"customer_ids": [""]}, "blank"),
        ({"customer_ids": [3]}, "valid string"),
    ],
)
def test_bad_payloads_are_named(payload, words):
    with pytest.raises(ValidationError, match=words):
        PredictRequest.model_validate(payload)


def test_risk_bands_and_their_configuration():
    bands = parse_bands("0.75,0.50,0.25")
    assert [risk_band(p, bands) for p in (0.9, 0.75, 0.6, 0.3, 0.1)] == ["High", "High", "Medium", "Low", "Very Low"]
    for bad in ("0.5,0.75,0.25", "1,0.5", "a,b,c", "0.9,0.5,0"):
        with pytest.raises(ValueError, match="risk_bands"):
            parse_bands(bad)


def test_the_split_is_sticky_and_close_to_the_share():
    ids = [f"C{i:06d}" for i in range(20_000)]
    picked = [in_challenger_bucket(c, 0.1) for c in ids]
    assert abs(sum(picked) / len(ids) - 0.1) < 0.01
    assert picked == [in_challenger_bucket(c, 0.1) for c in ids]  # same customer, same side
    assert not any(in_challenger_bucket(c, 0.0) for c in ids[:100]) and all(
        in_challenger_bucket(c, 1.0) for c in ids[:100]
    )
    # growing the share only moves customers towards the challenger
    assert all(in_challenger_bucket(c, 0.2) for c, p in zip(ids, picked) if p)


def test_the_spool_loader_takes_whole_lines_once_and_drops_dead_segments(tmp_path):
    from ml_platform.config import Settings
    from ml_platform.lake.reader import read_pandas
    from ml_platform.serving.spool import PredictionSpool, load_spool

    s = Settings(home=tmp_path)
    folder = tmp_path / "spool"
    spool = PredictionSpool(folder)
    rec = {
        "request_id": "r1",
        "event_time": "2025-03-01T10:00:00+00:00",
        "customer_id": "C1",
        "model_name": "m",
        "model_version": "1",
        "variant": "champion",
        "returned": True,
        "churn_probability": 0.3,
        "feature_timestamp": None,
        "features_json": "{}",
    }
    spool.append([rec | {"prediction_id": "r1:0:champion"}, rec | {"prediction_id": "r1:1:champion"}])
    first = load_spool(folder, s)
    assert first["records"] == 2 and first["inserted"] == 2 and first["segments_removed"] == 0  # writer alive
    # a worker killed mid-write: its segment ends in a line without a newline, and its pid is gone
    dead = folder / "999999-1-x.jsonl"
    dead.write_text(
        json.dumps(rec | {"prediction_id": "r9:0:champion", "request_id": "r9"})
        + "\n"
        + '{"prediction_id": "r10:0:cham'
    )
    second = load_spool(folder, s)
    assert second["records"] == 3 and second["inserted"] == 1 and not dead.exists()
    assert load_spool(folder, s)["inserted"] == 0  # loading again adds nothing
    log = read_pandas(f"{s.lake_uri}/monitoring/prediction_log")
    assert sorted(log["prediction_id"]) == ["r1:0:champion", "r1:1:champion", "r9:0:champion"]
    assert str(log["date"].iloc[0]) == "2025-03-01"
    spool.close()
    assert os.path.exists(spool.path)


def test_a_full_segment_is_closed_loaded_and_deleted_while_the_writer_goes_on(tmp_path):
    from ml_platform.config import Settings
    from ml_platform.lake.reader import read_pandas
    from ml_platform.serving.spool import PredictionSpool, load_spool, writer_alive

    s = Settings(home=tmp_path)
    folder = tmp_path / "spool"
    spool = PredictionSpool(folder, max_bytes=2000)
    rec = {"request_id": "r", "event_time": "2025-03-01T10:00:00+00:00", "customer_id": "C", "returned": True}
    first = spool.path
    for i in range(40):  # ~100 bytes each: about two segments' worth
        spool.append([rec | {"prediction_id": f"p{i}"}])
    segments = sorted(folder.glob("*.jsonl"))
    assert len(segments) >= 2 and spool.path != first
    assert not writer_alive(first) and writer_alive(spool.path)  # the full one is closed, the new one live
    out = load_spool(folder, s)
    assert out["inserted"] == 40 and out["segments_removed"] == len(segments) - 1
    assert sorted(folder.glob("*.jsonl")) == [spool.path]
    spool.append([rec | {"prediction_id": "p40"}])
    assert load_spool(folder, s)["inserted"] == 1
    assert sorted(read_pandas(f"{s.lake_uri}/monitoring/prediction_log")["prediction_id"]) == sorted(
        f"p{i}" for i in range(41)
    )
    spool.close()


class _Workers:
    """A stand-in `/readyz` of a multi-worker service: each new connection goes to the next pid in
    turn (as the kernel spreads them); `champions[pid]` is what that worker reports."""

    def __init__(self, champions: dict[int, str], workers: int) -> None:
        import itertools
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.champions, turn, lock = champions, itertools.cycle(list(champions)), threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with lock:
                    pid = next(turn)
                body = json.dumps({"pid": pid, "workers": workers, "champion": outer.champions[pid]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_confirm_serving_waits_for_every_worker_and_forgets_a_replaced_one():
    import threading

    from ml_platform.errors import MlPlatformError
    from ml_platform.serving.bento import confirm_serving

    svc = _Workers({101: "3", 102: "2"}, workers=2)  # one worker swapped, the other not yet
    try:
        with pytest.raises(MlPlatformError, match=r"\['2', '3'\] over 2 of 2 workers"):
            confirm_serving("3", svc.url, timeout=1.0)
        threading.Timer(0.5, lambda: svc.champions.update({102: "3"})).start()
        out = confirm_serving("3", svc.url, timeout=10.0)
        assert out == {"running": True, "confirmed": True, "url": svc.url, "version": "3", "workers": 2}
    finally:
        svc.server.shutdown()
    # pid 201 (old model) answered first, then two others: with 2 workers, 201 is the one that was replaced
    svc = _Workers({201: "2", 202: "3", 203: "3"}, workers=2)
    try:
        out = confirm_serving("3", svc.url, timeout=10.0)
        assert out["confirmed"] is True and out["workers"] == 2
    finally:
        svc.server.shutdown()
    assert confirm_serving("3", "http://127.0.0.1:9", timeout=1.0)["running"] is False


_WRITER = """
import sys
from pathlib import Path
from ml_platform.serving.spool import PredictionSpool
spool = PredictionSpool(Path(sys.argv[1]))
rec = {"request_id": "w", "event_time": "2025-03-01T10:00:00+00:00", "customer_id": "C1", "model_name": "m",
       "model_version": "1", "variant": "champion", "returned": True, "churn_probability": 0.5,
       "feature_timestamp": None, "features_json": "{}"}
for i, _ in enumerate(iter(sys.stdin.readline, "")):
    spool.append([rec | {"prediction_id": f"w:{i}:champion"}])
    print(spool.path, flush=True)
"""


def test_a_live_writer_whose_pid_the_loader_cannot_see_keeps_its_segment(tmp_path):
    """Issue 20, finding 1: a loader in another PID namespace (another container on the same volume)
    took a live worker's segment for dead and deleted it, and every later prediction of that worker was
    lost. The writer's lock decides now: renaming the segment to a pid that does not exist here stands
    in for the other namespace; the segment stays until the writer is SIGKILLed, and no line is lost."""
    import signal
    import subprocess
    import sys

    from ml_platform.config import Settings
    from ml_platform.lake.reader import read_pandas
    from ml_platform.serving.spool import load_spool

    s = Settings(home=tmp_path)
    folder = tmp_path / "spool"
    w = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        w.stdin.write(b"\n")
        w.stdin.flush()
        seg = Path(w.stdout.readline().decode().strip())
        hidden = seg.with_name("4194303-" + seg.name.split("-", 1)[1])  # above pid_max: no such process here
        seg.rename(hidden)
        assert load_spool(folder, s)["segments_removed"] == 0 and hidden.exists()
        w.stdin.write(b"\n")  # the worker keeps writing to its (renamed) segment
        w.stdin.flush()
        w.stdout.readline()
    finally:
        w.send_signal(signal.SIGKILL)
        w.wait()
    out = load_spool(folder, s)
    assert out["segments_removed"] == 1 and not hidden.exists()
    log = read_pandas(f"{s.lake_uri}/monitoring/prediction_log")
    assert sorted(log["prediction_id"]) == ["w:0:champion", "w:1:champion"]


def test_a_write_cut_by_a_full_disk_refuses_the_request_and_never_swallows_the_next_record(tmp_path, monkeypatch):
    import errno

    from ml_platform.serving import spool as spool_mod
    from ml_platform.serving.spool import PredictionSpool, SpoolUnavailable, read_segment

    spool = PredictionSpool(tmp_path / "spool")
    rec = {"request_id": "r", "event_time": "2025-03-01T10:00:00+00:00", "features_json": "{}"}
    real_write, calls = os.write, []

    def full_disk(fd, data):  # the first write lands 10 bytes, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(spool_mod.os, "write", full_disk)
    with pytest.raises(SpoolUnavailable, match="No space left on device"):
        spool.append([rec | {"prediction_id": "lost"}])
    spool.append([rec | {"prediction_id": "kept"}])  # space again
    assert [r["prediction_id"] for r in read_segment(spool.path)] == ["kept"]
    spool.close()
