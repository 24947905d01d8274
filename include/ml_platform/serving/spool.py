"""The prediction log: a per-worker append-only spool, and a loader that MERGEs it into Delta.

Each serving worker appends one JSON line per prediction to its own segment file with a plain
`write` on an O_APPEND descriptor before the response is sent: once `write` returns, the line is
in the page cache and survives the process being killed. `fsync` runs at most once a second on a
background thread; it only matters for a power loss. The loader reads whole lines (a line cut by
a crash has no newline yet and is left for the next run) and MERGEs them into
`monitoring.prediction_log` on `prediction_id`, so loading twice never duplicates a row.

Whether a segment's writer is alive is an exclusive `flock` the writer holds on its segment for
its whole life (the kernel drops it when the process dies, SIGKILL included): the loader deletes
a loaded segment only when it can take that lock itself. A pid test would not do: a loader in
another PID namespace (another container sharing the volume) cannot see the writer's pid, and on
one host a reused pid keeps a dead segment for ever. A write that fails half-way (a full disk)
raises `SpoolUnavailable` (the request is refused: an answered prediction is always logged) and
the next write first ends the torn fragment with a newline, so it cannot swallow the next record.

A segment is closed once it holds `max_bytes` (64 MiB by default): the writer continues in a new
one and drops the old one's lock, so the loader deletes it after loading it and each load reads
at most one live segment per worker beyond the closed ones not yet loaded.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ml_platform.config import get_settings
from ml_platform.errors import MlPlatformError
from ml_platform.lake.paths import table_path
from ml_platform.lake.reader import delta_table, table_exists, write_delta

LOG_TABLE = "monitoring.prediction_log"
log = logging.getLogger(__name__)


class SpoolUnavailable(MlPlatformError):
    """The prediction could not be logged (the spool's disk is full or failing): it is not served."""


class PredictionSpool:
    def __init__(self, folder: Path, fsync_every: float = 1.0, max_bytes: int = 64 * 2**20) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.max_bytes = folder, max_bytes
        self._open_segment()
        self._torn = False  # a write failed half-way: the file ends inside a line
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._closed = threading.Event()
        threading.Thread(target=self._syncer, args=(fsync_every,), daemon=True, name="spool-fsync").start()

    def append(self, records: list[dict[str, Any]]) -> None:
        """One `write` for all of a request's records (lines), so they land together."""
        if not records:
            return
        data = "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n" for r in records).encode()
        with self._lock:
            if self._torn:  # end the fragment of the failed write: it becomes one unreadable line, skipped
                data = b"\n" + data
            view = memoryview(data)
            try:
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError as e:
                self._torn = self._torn or len(view) < len(data)
                raise SpoolUnavailable(
                    f"the prediction log cannot be written ({e.strerror or e}): {self.path}"
                ) from None
            self._torn = False
            self._size += len(data)
            if self._size >= self.max_bytes:
                self._rotate()
        self._dirty.set()

    def _open_segment(self) -> None:
        self.path = self.folder / f"{os.getpid()}-{int(time.time() * 1000)}-{uuid.uuid4().hex[:6]}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "alive" for the loader, until closed or dead
        self._size = 0

    def _rotate(self) -> None:
        """Continue in a new segment; the full one is synced and closed (its lock dropped)."""
        old = self._fd
        try:
            self._open_segment()
        except OSError as e:  # keep writing to the full one rather than refuse requests
            log.warning("prediction spool: cannot open a new segment in %s: %s", self.folder, e)
            self._size = 0
            return
        try:
            os.fsync(old)
        except OSError as e:
            log.warning("prediction spool: fsync of a closed segment failed: %s", e)
        os.close(old)

    def _syncer(self, every: float) -> None:
        while not self._closed.wait(every):
            if self._dirty.is_set():
                self._dirty.clear()
                try:
                    with self._lock:  # not across a rotation
                        os.fsync(self._fd)
                except OSError as e:  # keep trying: the next tick may succeed (space freed)
                    self._dirty.set()
                    log.warning("prediction spool %s: fsync failed: %s", self.path, e)

    def close(self) -> None:
        self._closed.set()
        try:
            os.fsync(self._fd)
            os.close(self._fd)
        except OSError:
            pass


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("prediction_id", pa.string()),
            ("request_id", pa.string()),
            ("event_time", pa.timestamp("us", tz="UTC")),
            ("date", pa.date32()),
            ("customer_id", pa.string()),
            ("model_name", pa.string()),
            ("model_version", pa.string()),
            ("variant", pa.string()),
            ("returned", pa.bool_()),
            ("churn_probability", pa.float64()),
            ("feature_timestamp", pa.string()),
            ("features_json", pa.string()),
        ]
    )


def writer_alive(path: Path) -> bool:
    """True while the process that writes segment `path` holds its lock (see the module doc)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock if we took it
    return False


def read_segment(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a segment (a trailing partial line is ignored)."""
    data = path.read_bytes()
    end = data.rfind(b"\n")
    if end < 0:
        return []
    out = []
    for line in data[:end].split(b"\n"):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line in the middle cannot happen with O_APPEND; skip rather than stop
    return out


def load_spool(folder: Path, settings: Any = None) -> dict[str, Any]:
    """MERGE every complete spooled prediction into monitoring.prediction_log; idempotent.

    Segments of workers that are gone are deleted once loaded."""
    import pyarrow as pa

    s = settings or get_settings()
    segments = sorted(folder.glob("*.jsonl")) if folder.exists() else []
    records: dict[str, dict[str, Any]] = {}
    finished = []
    for seg in segments:
        alive = writer_alive(seg)
        for r in read_segment(seg):
            ts = datetime.fromisoformat(r["event_time"])
            records[r["prediction_id"]] = r | {"event_time": ts, "date": ts.astimezone(timezone.utc).date()}
        if not alive:
            finished.append(seg)
    path = table_path(LOG_TABLE, s)
    inserted = 0
    if records:
        table = pa.Table.from_pylist(list(records.values()), schema=_schema())
        if not table_exists(path):
            write_delta(path, table, partition_by=["date"], mode="append")
            inserted = table.num_rows
        else:
            m = (
                delta_table(path)
                .merge(table, predicate="t.prediction_id = s.prediction_id", source_alias="s", target_alias="t")
                .when_not_matched_insert_all()
                .execute()
            )
            inserted = int(m.get("num_target_rows_inserted", 0))
    for seg in finished:
        seg.unlink(missing_ok=True)
    return {
        "segments": len(segments),
        "records": len(records),
        "inserted": inserted,
        "segments_removed": len(finished),
        "table": path,
    }
