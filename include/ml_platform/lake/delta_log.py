"""The embedded engine's Delta Lake reader and writer, for a lake on local disk or in Azure Storage:
a table's state at a version from its log, and commits that replace whole partitions, with no JVM.

Why not delta-rs alone: deltalake 1.6 refuses to commit to tables with row tracking, in-commit
timestamps or domain metadata (the feature tables' properties, `lake.paths.FEATURE_TABLE_PROPERTIES`),
and its add actions lack the row-tracking fields (`baseRowId`, `defaultRowCommitVersion`) that
break point-in-time ties. This module implements the part of the Delta protocol those need:

- reading: the newest classic checkpoint at or below the version (single or multi-part Parquet),
  then the JSON commits after it; the live files with their row-tracking fields, the protocol,
  the metadata, the row-id high-water mark and the last in-commit timestamp;
- writing: Parquet data files (no partition columns in them, as Spark writes them) and one JSON
  commit that removes the replaced partitions' files and adds the new ones (every
  `delta.checkpointInterval` commits, 10 by default as Spark's, a classic checkpoint by delta-rs), with `baseRowId` /
  `defaultRowCommitVersion`, the new `delta.rowTracking` high-water mark, and `commitInfo` first
  with a strictly increasing `inCommitTimestamp`. The commit file is created atomically only if
  absent (locally a hard link of a complete file, `os.link`; in Azure Storage one upload with
  `If-None-Match: *`): a concurrent commit of the same version is a `CommitConflict`, never an
  overwrite. Data files of a failed commit are orphans that VACUUM removes; readers never see them.

A table in Azure Storage is reached through adlfs (`lake.storage.upath`, the lake's credentials).
DuckDB reads local copies of its data files (`readable_files`): each file is downloaded whole into
`<home>/cache/lake` the first time it is needed, all missing ones concurrently, and reused by later
processes (a Delta data file is never rewritten under its name; copies unused for a day go).
(Read through fsspec, DuckDB made about 20 requests per file, mostly metadata, where this makes one:
`benchmarks/lake_storage.py` counts them.)

What it refuses, by name (`UnsupportedTable`): deletion vectors, column mapping, V2 checkpoints
and any reader or writer feature not listed in `_WRITER_FEATURES`. Spark and delta-rs read what
it writes (`tests/spark/test_delta_log.py`, on Azurite `tests/azure/test_azure_lake.py`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from ml_platform.errors import MlPlatformError
from ml_platform.lake.reader import UnsupportedTable
from ml_platform.locations import is_remote

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)
ROW_TRACKING_DOMAIN = "delta.rowTracking"
#: Writer features this writer honours (the legacy ones implied by writer version 7 tables included:
#: an appendOnly table is refused at write time, invariants are not written by the platform).
_WRITER_FEATURES = {"domainMetadata", "rowTracking", "inCommitTimestamp", "appendOnly", "invariants"}
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")
_V2_CHECKPOINT = re.compile(r"^\d{20}\.checkpoint\.[0-9a-f-]{36}\.(?:json|parquet)$")


class CommitConflict(MlPlatformError):
    """Another writer committed the version this commit was prepared for: nothing was changed."""


@dataclass
class Snapshot:
    """A table's state at `version`: live files by path (their add actions), protocol, metadata.
    `path`: the table's root (`table_root`)."""

    path: Any  # table_root: a pathlib.Path, or a UPath in Azure Storage
    version: int
    protocol: dict[str, Any]
    metadata: dict[str, Any]
    files: dict[str, dict[str, Any]] = field(repr=False)
    domains: dict[str, dict[str, Any]] = field(repr=False)
    in_commit_timestamp: int | None = None  # the last commit's, when in-commit timestamps are on

    @property
    def configuration(self) -> dict[str, str]:
        return dict(self.metadata.get("configuration") or {})

    @property
    def partition_columns(self) -> list[str]:
        return list(self.metadata.get("partitionColumns") or [])

    @property
    def row_tracking(self) -> bool:
        return self.configuration.get("delta.enableRowTracking") == "true"

    @property
    def row_id_high_water_mark(self) -> int:
        d = self.domains.get(ROW_TRACKING_DOMAIN)
        return int(json.loads(d["configuration"])["rowIdHighWaterMark"]) if d else -1

    def schema_fields(self) -> list[dict[str, Any]]:
        return list(json.loads(self.metadata["schemaString"])["fields"])


def table_root(path: Any) -> Any:
    """The handle of the table at `path` (a local path, a `file:` URI, an `abfss://` URI or a root
    from here): a `pathlib.Path` locally, an adlfs-backed `upath.UPath` in Azure Storage (the two
    share the calls used here: `/`, `name`, `iterdir`, `open`)."""
    if not isinstance(path, (str, Path)):
        return path  # already a root
    text = str(path)
    if is_remote(text):
        from ml_platform.lake.storage import upath

        return upath(text)
    return Path(text.removeprefix("file://").removeprefix("file:"))


def _remote(root: Any) -> bool:
    return not isinstance(root, Path)


#: How long a downloaded copy of a remote data file stays in `<home>/cache/lake` unused.
COPY_TTL_SECONDS = 24 * 3600
_PRUNED: list[Path] = []


def readable_files(snap: Snapshot, adds: list[dict[str, Any]]) -> list[str]:
    """Local paths DuckDB reads for the add actions `adds` of `snap`: the files themselves on a
    local lake; in Azure Storage local copies in `<home>/cache/lake`, each downloaded whole the
    first time it is needed (all missing ones concurrently) and shared by later processes: a Delta
    data file is never rewritten under its name. A copy unused for `COPY_TTL_SECONDS` is deleted."""
    import hashlib

    from ml_platform.config import get_settings

    locations = [file_location(snap, a) for a in adds]
    if not _remote(snap.path):
        return locations
    fs = snap.path.fs
    folder = Path(get_settings().home).absolute() / "cache" / "lake"
    folder.mkdir(parents=True, exist_ok=True)
    _prune(folder)
    account = str(getattr(fs, "account_name", ""))
    copies = {f: folder / f"{hashlib.sha256(f'{account}/{f}'.encode()).hexdigest()[:32]}.parquet" for f in locations}
    missing = []
    for f, copy in copies.items():
        try:
            os.utime(copy)  # in use: not pruned for another day
        except FileNotFoundError:
            missing.append(f)
    if missing:
        parts = [f"{copies[f]}.{uuid.uuid4().hex}.part" for f in missing]
        try:
            fs.get([f.removeprefix("abfs://") for f in missing], parts)
            for f, part in zip(missing, parts):
                os.replace(part, copies[f])  # whole, or not at all
        finally:
            for part in parts:
                Path(part).unlink(missing_ok=True)
    return [str(copies[f]) for f in locations]


def _prune(folder: Path) -> None:
    """Delete the copies unused for `COPY_TTL_SECONDS` (once per process and folder)."""
    if folder in _PRUNED:
        return
    _PRUNED.append(folder)
    old = time.time() - COPY_TTL_SECONDS
    for f in folder.iterdir():
        try:
            if f.stat().st_mtime < old:
                f.unlink()
        except FileNotFoundError:
            pass  # another process pruned it


def _log_files(log: Any) -> tuple[dict[int, Any], dict[int, dict[int, Any]], bool]:
    commits: dict[int, Any] = {}
    checkpoints: dict[int, dict[int, Any]] = {}  # version -> part -> file (part 0: single file)
    v2 = False
    try:
        entries = list(log.iterdir())  # uncached in Azure Storage (`lake.storage.fsspec_options`)
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    for f in entries:
        if m := _COMMIT.match(f.name):
            commits[int(m[1])] = f
        elif m := _CHECKPOINT.match(f.name):
            checkpoints.setdefault(int(m[1]), {})[int(m[2] or 0)] = f
        elif _V2_CHECKPOINT.match(f.name):
            v2 = True
    return commits, checkpoints, v2


def _read_texts(files: list[Any], missing_ok: bool = False) -> list[str | None]:
    """Each file's text (UTF-8; None for a missing one with `missing_ok`). In Azure Storage all of
    them are fetched concurrently, one request each."""
    if files and _remote(files[0]):
        got = files[0].fs.cat([f.path for f in files], on_error="return")
        out: list[str | None] = []
        for f in files:
            value = got.get(f.path, FileNotFoundError(f.path))
            if isinstance(value, Exception):
                if missing_ok and isinstance(value, FileNotFoundError):
                    out.append(None)
                    continue
                raise value
            out.append(value.decode("utf-8"))
        return out
    texts: list[str | None] = []
    for f in files:
        try:
            texts.append(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if not missing_ok:
                raise
            texts.append(None)
    return texts


def _complete(parts: dict[int, Any]) -> list[Any] | None:
    """The files of a checkpoint if every part is there (a single file is part 0)."""
    if list(parts) == [0]:
        return [parts[0]]
    total = {int(_CHECKPOINT.match(p.name)[3]) for p in parts.values()}  # type: ignore[index]
    if len(total) == 1 and sorted(parts) == list(range(1, total.pop() + 1)):
        return [parts[k] for k in sorted(parts)]
    return None


def _checkpoint_actions(files: list[Any]) -> Iterable[dict[str, Any]]:
    import pyarrow.parquet as pq

    for f in files:
        with f.open("rb") as fh:
            table = pq.read_table(fh)
        for kind in ("protocol", "metaData", "add", "domainMetadata"):
            if kind not in table.column_names:
                continue
            for value in table.column(kind).to_pylist():
                if value is None:
                    continue
                for k in ("partitionValues", "configuration", "tags"):  # Parquet maps come as pairs
                    if isinstance(value.get(k), list):
                        value[k] = dict(value[k])
                yield {kind: value}


def latest_version(path: str | Path) -> int | None:
    """The table's newest version, from its log's file names (no replay), or None when `path`
    holds no table."""
    commits, checkpoints, _ = _log_files(table_root(path) / "_delta_log")
    return max([*commits, *checkpoints], default=None)


def snapshot(path: str | Path, version: int | None = None) -> Snapshot | None:
    """The table's state at `version` (default: the newest), or None when `path` holds no table.
    `ValueError` for a version the log does not have."""
    root = table_root(path)
    commits, checkpoints, v2 = _log_files(root / "_delta_log")
    if not commits and not checkpoints:
        return None
    newest = max(commits) if commits else max(checkpoints)
    target = newest if version is None else int(version)
    if target < 0 or target > newest:
        raise ValueError(f"{root} has versions up to {newest}; no version {version}")
    start, state = _replay_start(root, commits, checkpoints, v2, target)
    for text in _read_texts([commits[v] for v in range(start + 1, target + 1)]):
        for line in (text or "").splitlines():
            if line.strip():
                state.apply(json.loads(line))
    if state.ict is None and target in commits:  # the version came from a checkpoint: its commit file says
        first = json.loads(((_read_texts([commits[target]])[0] or "").splitlines() or ["{}"])[0])
        state.ict = first.get("commitInfo", {}).get("inCommitTimestamp")
    snap = Snapshot(root, target, state.protocol, state.metadata, state.files, state.domains, state.ict)
    _check_supported(snap)
    return snap


@dataclass
class _TableState:
    """The table's state while the log replays: each action applied in order."""

    protocol: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    ict: int | None = None  # the newest commit's in-commit timestamp

    def apply(self, action: dict[str, Any]) -> None:
        if "commitInfo" in action:
            self.ict = action["commitInfo"].get("inCommitTimestamp", self.ict)
        elif "add" in action:
            self.files[action["add"]["path"]] = action["add"]
        elif "remove" in action:
            self.files.pop(action["remove"]["path"], None)
        elif "metaData" in action:
            self.metadata = action["metaData"]
        elif "protocol" in action:
            self.protocol = action["protocol"]
        elif "domainMetadata" in action:
            d = action["domainMetadata"]
            if d.get("removed"):
                self.domains.pop(d["domain"], None)
            else:
                self.domains[d["domain"]] = d


def _replay_start(
    root: Any, commits: dict[int, Any], checkpoints: dict[int, Any], v2: bool, target: int
) -> tuple[int, _TableState]:
    """The newest complete checkpoint at or below `target` applied (version -1 and an empty state
    without one); `UnsupportedTable` when the commits after it are not all there."""
    start, state = -1, _TableState()
    for v in sorted((v for v in checkpoints if v <= target), reverse=True):
        if files := _complete(checkpoints[v]):
            start = v
            for action in _checkpoint_actions(files):
                state.apply(action)
            break
    if v2 and start < 0 and 0 not in commits:
        raise UnsupportedTable(f"{root} uses V2 checkpoints: read it with Spark")
    missing = [v for v in range(start + 1, target + 1) if v not in commits]
    if missing:
        raise UnsupportedTable(f"{root}: commit file(s) {missing[:3]} are gone and no checkpoint covers them")
    return start, state


def _check_supported(snap: Snapshot) -> None:
    reader = set(snap.protocol.get("readerFeatures") or [])
    writer = set(snap.protocol.get("writerFeatures") or [])
    mode = snap.configuration.get("delta.columnMapping.mode", "none")
    if "deletionVectors" in reader | writer or any(f.get("deletionVector") for f in snap.files.values()):
        raise UnsupportedTable(f"{snap.path} uses deletion vectors: use Spark for it")
    if mode != "none" or "columnMapping" in reader | writer:
        raise UnsupportedTable(f"{snap.path} uses column mapping (mode {mode}): use Spark for it")
    if snap.protocol.get("minReaderVersion", 1) > 3 or snap.protocol.get("minWriterVersion", 2) > 7:
        raise UnsupportedTable(f"{snap.path} needs a newer Delta protocol than the embedded engine knows: use Spark")
    unknown = sorted((reader | writer) - _WRITER_FEATURES)
    if unknown:
        raise UnsupportedTable(f"{snap.path} uses table feature(s) {unknown}: use Spark for it")


# ---------------------------------------------------------------------------------------- reading
def live_files(snap: Snapshot, where: dict[str, set[str]] | None = None) -> list[dict[str, Any]]:
    """The snapshot's add actions (sorted by path), only the partitions whose values are in `where`."""
    out = []
    for _, add in sorted(snap.files.items()):
        values = add.get("partitionValues") or {}
        if where and any(values.get(c) not in allowed for c, allowed in where.items()):
            continue
        out.append(add)
    return out


def file_location(snap: Snapshot, add: dict[str, Any]) -> str:
    """The file of an add action (its path is a URL-encoded path relative to the table): a local
    path, or in Azure Storage `abfs://<container>/<path>` (DuckDB reads `readable_files`)."""
    rel = add["path"]
    if "://" in rel:
        return unquote(rel.split("://", 1)[1]).removeprefix("/") if rel.startswith("file:") else rel
    if _remote(snap.path):
        return f"abfs://{(snap.path / unquote(rel)).path}"
    return str(snap.path / unquote(rel))


_DUCK_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "double": "DOUBLE",
    "float": "FLOAT",
    "long": "BIGINT",
    "integer": "INTEGER",
    "short": "SMALLINT",
    "byte": "TINYINT",
    "boolean": "BOOLEAN",
}


def _duck_type(spark_type: Any, where: str) -> str:
    name = spark_type if isinstance(spark_type, str) else None
    if name is None or name not in _DUCK_TYPES:
        raise UnsupportedTable(f"{where}: column type {spark_type} is not read by the embedded engine: use Spark")
    return _DUCK_TYPES[name]


@dataclass(frozen=True)
class DeltaView:
    """A snapshot's rows as a DuckDB view (see `read_table`), for queries that scan the files
    themselves instead of a copy in memory (`features.pit_embedded` takes one as either side)."""

    snap: Snapshot
    where: dict[str, set[str]] | None = None
    columns: list[str] | None = None
    row_tracking: bool = False

    def register_in(self, con: Any, name: str) -> None:
        """Create the view `name` in the DuckDB connection `con`."""
        import pyarrow as pa

        snap = self.snap
        fields = {f["name"]: f["type"] for f in snap.schema_fields()}
        wanted = self.columns or list(fields)
        unknown = [c for c in wanted if c not in fields]
        if unknown:
            raise ValueError(f"{snap.path} has no column(s) {unknown}; it has {list(fields)}")
        if self.row_tracking and not snap.row_tracking:
            raise UnsupportedTable(f"{snap.path} has no row tracking")
        parts = snap.partition_columns
        files = live_files(snap, self.where)
        types = {c: _duck_type(fields[c], f"{snap.path}.{c}") for c in wanted}
        extra = {"_row_id": "BIGINT", "_row_commit_version": "BIGINT"} if self.row_tracking else {}
        if not files:
            cols = ", ".join(f"CAST(NULL AS {t}) AS {_q(c)}" for c, t in {**types, **extra}.items())
            con.execute(f"CREATE VIEW {_q(name)} AS SELECT {cols} LIMIT 0")
            return
        meta = pa.table(
            {
                "__file": readable_files(snap, files),
                "__base": pa.array([a.get("baseRowId") for a in files], pa.int64()),
                "__ver": pa.array([a.get("defaultRowCommitVersion") for a in files], pa.int64()),
                **{f"__p_{i}": [(a.get("partitionValues") or {}).get(c) for a in files] for i, c in enumerate(parts)},
            }
        )
        con.register(f"{name}__meta", meta)
        paths = ", ".join("'" + f.replace("'", "''") + "'" for f in meta.column("__file").to_pylist())
        con.execute(
            f"CREATE VIEW {_q(name + '__files')} AS SELECT * FROM read_parquet([{paths}], union_by_name = true, "
            f"filename = '__pl_file', file_row_number = true)"
        )
        present = set(con.sql(f"SELECT * FROM {_q(name + '__files')} LIMIT 0").columns)
        select = []
        for c in wanted:
            if c in parts:
                select.append(f"CAST(m.__p_{parts.index(c)} AS {types[c]}) AS {_q(c)}")
            elif c in present:
                select.append(f"CAST(f.{_q(c)} AS {types[c]}) AS {_q(c)}")
            else:
                select.append(f"CAST(NULL AS {types[c]}) AS {_q(c)}")
        if self.row_tracking:
            rid = snap.configuration.get("delta.rowTracking.materializedRowIdColumnName", "")
            ver = snap.configuration.get("delta.rowTracking.materializedRowCommitVersionColumnName", "")
            rid_sql = "m.__base + f.file_row_number"
            ver_sql = "m.__ver"
            if rid in present:
                rid_sql = f"coalesce(f.{_q(rid)}, {rid_sql})"
            if ver in present:
                ver_sql = f"coalesce(f.{_q(ver)}, {ver_sql})"
            select += [f"CAST({rid_sql} AS BIGINT) AS _row_id", f"CAST({ver_sql} AS BIGINT) AS _row_commit_version"]
        con.execute(
            f"CREATE VIEW {_q(name)} AS SELECT {', '.join(select)} FROM {_q(name + '__files')} f "
            f"JOIN {_q(name + '__meta')} m ON f.__pl_file = m.__file"
        )


def read_table(
    snap: Snapshot,
    *,
    where: dict[str, set[str]] | None = None,
    columns: list[str] | None = None,
    row_tracking: bool = False,
    threads: int | None = None,
) -> pa.Table:
    """The snapshot's rows as Arrow (DuckDB over its live files): the table's columns (or
    `columns`) with the table's types, partition values from the log, NULL for columns a file
    predates; with `row_tracking` also `_row_id` and `_row_commit_version` as Spark's
    `_metadata.row_id` / `row_commit_version` (materialized values first, else the file's
    `baseRowId` + row index and `defaultRowCommitVersion`). `where`: partition column -> values."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        DeltaView(snap, where, columns, row_tracking).register_in(con, "t")
        return con.sql("SELECT * FROM t").to_arrow_table()
    finally:
        con.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def commit_times(snap: Snapshot) -> list[tuple[int, int]]:
    """(version, commit time in ms) of every version up to the snapshot's: the in-commit timestamp
    when the commit has one, else its commitInfo timestamp (what DESCRIBE HISTORY shows)."""
    out = []
    log = snap.path / "_delta_log"
    texts = _read_texts([log / f"{v:020d}.json" for v in range(snap.version + 1)], missing_ok=True)
    for v, text in enumerate(texts):
        if text is None:
            raise UnsupportedTable(f"{snap.path}: commit {v} is gone, its time is unknown: use Spark")
        info = json.loads((text.splitlines() or ["{}"])[0]).get("commitInfo", {})
        t = info.get("inCommitTimestamp", info.get("timestamp"))
        if t is None:
            raise UnsupportedTable(f"{snap.path}: commit {v} has no commitInfo first: use Spark")
        out.append((v, int(t)))
    return out


# ---------------------------------------------------------------------------------------- writing
_SPARK_TYPES = {
    "string": "string",
    "large_string": "string",
    "date32[day]": "date",
    "double": "double",
    "float": "float",
    "int64": "long",
    "int32": "integer",
    "int16": "short",
    "int8": "byte",
    "bool": "boolean",
}


def _spark_type(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise UnsupportedTable("timestamps without a time zone are not written by the embedded engine")
        return "timestamp"
    name = _SPARK_TYPES.get(str(t))
    if name is None:
        raise UnsupportedTable(f"the embedded engine does not write Arrow type {t}")
    return name


def _schema_fields(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": _spark_type(f.type), "nullable": True, "metadata": {}} for f in schema]


def _partition_string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _stats(table: pa.Table) -> str:
    """numRecords, nullCount of every column, min/max of integer and date columns (exact; strings,
    floats and timestamps are left out rather than truncated)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name, col in zip(table.column_names, table.columns):
        nulls[name] = col.null_count
        if (pa.types.is_integer(col.type) or pa.types.is_date32(col.type)) and col.null_count < len(col):
            mm = pc.min_max(col).as_py()
            conv = (lambda v: v.isoformat()) if pa.types.is_date32(col.type) else int
            mins[name], maxs[name] = conv(mm["min"]), conv(mm["max"])
    return json.dumps(
        {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
        separators=(",", ":"),
    )


def _new_metadata(schema: pa.Schema, partition_by: list[str], properties: dict[str, str]) -> dict[str, Any]:
    config = dict(properties)
    if config.get("delta.enableRowTracking") == "true":
        config.setdefault("delta.rowTracking.materializedRowIdColumnName", f"_row-id-col-{uuid.uuid4()}")
        config.setdefault(
            "delta.rowTracking.materializedRowCommitVersionColumnName", f"_row-commit-version-col-{uuid.uuid4()}"
        )
    return {
        "id": str(uuid.uuid4()),
        "format": {"provider": "parquet", "options": {}},
        "schemaString": json.dumps({"type": "struct", "fields": _schema_fields(schema)}, separators=(",", ":")),
        "partitionColumns": list(partition_by),
        "configuration": config,
        "createdTime": int(time.time() * 1000),
    }


def _new_protocol(properties: dict[str, str]) -> dict[str, Any]:
    features = []
    if properties.get("delta.enableRowTracking") == "true":
        features += ["domainMetadata", "rowTracking"]
    if properties.get("delta.enableInCommitTimestamps") == "true":
        features.append("inCommitTimestamp")
    if not features:
        return {"minReaderVersion": 1, "minWriterVersion": 2}
    return {"minReaderVersion": 1, "minWriterVersion": 7, "writerFeatures": [*features, "invariants", "appendOnly"]}


def _merged_metadata(snap: Snapshot, schema: pa.Schema) -> dict[str, Any] | None:
    """The table's metadata with `schema`'s new columns appended (None if there are none); a
    column whose type differs from the table's is an error (schema evolution adds, never changes)."""
    fields = snap.schema_fields()
    have = {f["name"]: f["type"] for f in fields}
    added = []
    for f in _schema_fields(schema):
        if f["name"] not in have:
            added.append(f)
        elif have[f["name"]] != f["type"]:
            raise UnsupportedTable(
                f"{snap.path}: column {f['name']} is {have[f['name']]} in the table, {f['type']} in the rows"
            )
    if not added:
        return None
    meta = dict(snap.metadata)
    meta["schemaString"] = json.dumps({"type": "struct", "fields": fields + added}, separators=(",", ":"))
    return meta


def _arrow_type(spark_type: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "double": pa.float64(),
        "float": pa.float32(),
        "long": pa.int64(),
        "integer": pa.int32(),
        "short": pa.int16(),
        "byte": pa.int8(),
        "boolean": pa.bool_(),
    }[spark_type]


def _conform(rows: pa.Table, snap: Snapshot) -> pa.Table:
    """`rows` with the table's types for the columns it has (a pandas int64 label into an integer
    column, nanosecond timestamps into microseconds); a value the cast would change is an error."""
    import pyarrow as pa

    have = {f["name"]: f["type"] for f in snap.schema_fields()}
    for i, name in enumerate(rows.column_names):
        t = have.get(name)
        if not isinstance(t, str) or t not in _DUCK_TYPES:
            continue
        target = _arrow_type(t)
        if rows.schema.field(i).type != target:
            try:
                rows = rows.set_column(i, name, rows.column(i).cast(target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise UnsupportedTable(f"{snap.path}: column {name} does not fit the table's type {t}: {e}") from None
    return rows


def replace_partitions(
    path: str | Path,
    rows: pa.Table,
    partition_by: list[str],
    *,
    replace: dict[str, Iterable[Any]] | None = None,
    properties: dict[str, str] | None = None,
    engine_info: str = "ml-platform embedded",
) -> int:
    """Commit `rows` to the Delta table at `path` (local or in Azure Storage), replacing the live files of the partitions
    whose values are in `replace` (column -> values; default: the partitions `rows` touch). Creates
    the table, partitioned by `partition_by` with `properties`, when it does not exist; adds new
    columns of `rows` to the table's schema (as Spark's mergeSchema). One file per partition.
    Returns the version committed. `CommitConflict` when another writer committed first."""
    import pyarrow.compute as pc

    root = table_root(path)
    snap = snapshot(root)
    rows = _check_target(root, snap, rows, partition_by)
    version = 0 if snap is None else snap.version + 1
    if replace is None:
        replace = {c: pc.unique(rows.column(c)).to_pylist() for c in partition_by}
    where = {c: {_partition_string(v) for v in values} for c, values in replace.items()}
    removed = live_files(snap, where) if snap is not None and where else []
    meta = (
        _new_metadata(rows.schema, partition_by, properties or {})
        if snap is None
        else _merged_metadata(snap, rows.schema)
    )
    current = meta if meta is not None else snap.metadata  # type: ignore[union-attr]
    config = dict(current.get("configuration") or {})
    tracking = config.get("delta.enableRowTracking") == "true"
    # the table's column order (the rows may carry them in another order, or fewer of them)
    order = [f["name"] for f in json.loads(current["schemaString"])["fields"]]
    data_cols = [c for c in order if c not in partition_by and c in rows.column_names]
    hwm = snap.row_id_high_water_mark if snap is not None else -1
    rows, groups = _partition_groups(rows, partition_by)
    adds = []
    for values, offset, n in groups:
        part = rows.slice(offset, n).select(data_cols)
        add = _write_partition(root, part, values, partition_by)
        if tracking:
            add["baseRowId"] = hwm + 1
            add["defaultRowCommitVersion"] = version
            hwm += part.num_rows
        adds.append(add)

    now = int(time.time() * 1000)
    info = _write_commit_info(snap, partition_by, where, adds, removed, rows.num_rows, engine_info, now)
    if config.get("delta.enableInCommitTimestamps") == "true":
        info = {"inCommitTimestamp": info["timestamp"], **info}
    actions: list[dict[str, Any]] = [{"commitInfo": info}]
    if snap is None:
        actions.append({"protocol": _new_protocol(config)})
    if meta is not None:
        actions.append({"metaData": meta})
    actions += [{"remove": _remove_action(old, now)} for old in removed]
    actions += [{"add": a} for a in adds]
    if tracking:
        actions.append({"domainMetadata": _row_tracking_domain(hwm)})
    _put_if_absent(root / "_delta_log" / f"{version:020d}.json", "".join(json.dumps(a) + "\n" for a in actions))
    interval = int(config.get("delta.checkpointInterval") or DEFAULT_CHECKPOINT_INTERVAL)
    if version > 0 and version % max(interval, 1) == 0:
        checkpoint(path, version)
    return version


def _check_target(root: Any, snap: Snapshot | None, rows: pa.Table, partition_by: list[str]) -> pa.Table:
    """`rows` fitted to the table's schema; refused when the table is partitioned otherwise or is
    append-only, or the rows lack a partition column."""
    if snap is not None:
        if snap.partition_columns != list(partition_by):
            raise UnsupportedTable(f"{root} is partitioned by {snap.partition_columns}, not {list(partition_by)}")
        if snap.configuration.get("delta.appendOnly") == "true":
            raise UnsupportedTable(f"{root} is append-only: partitions cannot be replaced")
    missing = [c for c in partition_by if c not in rows.column_names]
    if missing:
        raise ValueError(f"rows lack partition column(s) {missing}")
    return _conform(rows, snap) if snap is not None else rows


def _partition_groups(
    rows: pa.Table, partition_by: list[str]
) -> tuple[pa.Table, list[tuple[dict[str, Any], int, int]]]:
    """The rows sorted by the partition columns and each partition's (values, offset, count): one
    sort, then each partition is a contiguous slice (the groups sorted the same way)."""
    if not rows.num_rows:
        return rows, []
    if not partition_by:
        return rows, [({}, 0, rows.num_rows)]
    order = [(c, "ascending") for c in partition_by]
    rows = rows.sort_by(order)
    counts = rows.group_by(partition_by, use_threads=False).aggregate([([], "count_all")]).sort_by(order)
    groups, offset = [], 0
    for g in counts.to_pylist():
        n = g.pop("count_all")
        groups.append((g, offset, n))
        offset += n
    return rows, groups


def _write_partition(root: Any, part: pa.Table, values: dict[str, Any], partition_by: list[str]) -> dict[str, Any]:
    """One Parquet file of a partition's rows, in its Hive-style folder; its add action."""
    pvalues = {c: _partition_string(values[c]) for c in partition_by}
    folder = "/".join(
        f"{quote(c, safe='')}={'__HIVE_DEFAULT_PARTITION__' if v is None else quote(v, safe='')}"
        for c, v in pvalues.items()
    )
    name = f"part-00000-{uuid.uuid4()}.c000.snappy.parquet"
    rel = f"{folder}/{name}" if folder else name
    size, mtime = _write_parquet(root / unquote(rel), part)
    return {
        "path": rel,
        "partitionValues": pvalues,
        "size": size,
        "modificationTime": mtime,
        "dataChange": True,
        "stats": _stats(part),
    }


def _write_commit_info(
    snap: Snapshot | None,
    partition_by: list[str],
    where: dict[str, set[str]],
    adds: list[dict[str, Any]],
    removed: list[dict[str, Any]],
    rows: int,
    engine_info: str,
    now: int,
) -> dict[str, Any]:
    """The commit's `commitInfo`, as Spark writes it for an overwrite of partitions; its timestamp
    later than the table's last in-commit timestamp."""
    ict = max(now, (snap.in_commit_timestamp or 0) + 1) if snap is not None else now
    predicate = " AND ".join(f"{c} IN ({', '.join(repr(v) for v in sorted(map(str, vs)))})" for c, vs in where.items())
    info: dict[str, Any] = {
        "timestamp": ict,
        "operation": "WRITE",
        "operationParameters": {
            "mode": "Overwrite",
            "partitionBy": json.dumps(list(partition_by)),
            "predicate": predicate,
        },
        "isolationLevel": "Serializable",
        "isBlindAppend": False,
        "operationMetrics": {
            "numFiles": str(len(adds)),
            "numRemovedFiles": str(len(removed)),
            "numOutputRows": str(rows),
            "numOutputBytes": str(sum(a["size"] for a in adds)),
        },
        "engineInfo": engine_info,
        "txnId": str(uuid.uuid4()),
    }
    if snap is not None:
        info["readVersion"] = snap.version
    return info


def _remove_action(old: dict[str, Any], now: int) -> dict[str, Any]:
    rm = {
        "path": old["path"],
        "deletionTimestamp": now,
        "dataChange": True,
        "extendedFileMetadata": True,
        "partitionValues": old.get("partitionValues") or {},
        "size": old.get("size"),
    }
    for k in ("baseRowId", "defaultRowCommitVersion"):
        if old.get(k) is not None:
            rm[k] = old[k]
    return rm


def _row_tracking_domain(hwm: int) -> dict[str, Any]:
    """The row-tracking domain with the new high-water mark of row ids."""
    return {
        "domain": ROW_TRACKING_DOMAIN,
        "configuration": json.dumps(
            {"rowIdHighWaterMark": hwm, "domainName": ROW_TRACKING_DOMAIN}, separators=(",", ":")
        ),
        "removed": False,
    }


#: Spark's default `delta.checkpointInterval`: a checkpoint every 10 commits
DEFAULT_CHECKPOINT_INTERVAL = 10


def checkpoint(path: str | Path, version: int) -> bool:
    """Write a classic checkpoint of `version` (delta-rs's `create_checkpoint`: it keeps the add
    actions' row-tracking fields and the domain metadata, `tests/spark/test_delta_log.py`) and
    `_last_checkpoint`, so readers replay at most `delta.checkpointInterval` commits. A failure is
    logged and returns False: the commit already stands, and the next interval tries again."""
    from ml_platform.lake.reader import delta_table

    try:
        delta_table(str(path), version=version).create_checkpoint()
    except Exception as e:  # noqa: BLE001 - a missing checkpoint slows reads, it never loses data
        log.warning("no checkpoint of %s at version %d: %s", path, version, str(e)[:300])
        return False
    return True


def _write_parquet(target: Any, part: pa.Table) -> tuple[int, int]:
    """Write `part` as the Parquet file `target`; its size and modification time (ms)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if _remote(target):  # one upload of the whole file
        buf = pa.BufferOutputStream()
        pq.write_table(part, buf, compression="snappy")
        data = buf.getvalue().to_pybytes()
        target.fs.pipe_file(target.path, data)
        return len(data), int(time.time() * 1000)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(part, target, compression="snappy")
    st = target.stat()
    return st.st_size, int(st.st_mtime * 1000)


def _conflict(target: Any) -> CommitConflict:
    return CommitConflict(
        f"another writer committed version {int(target.name[:20])} of {target.parent.parent} first; "
        f"nothing was committed: retry"
    )


def _put_if_absent(target: Any, text: str) -> None:
    """Write `target` whole, only if it does not exist yet: locally a hard link of a complete temp
    file; in Azure Storage one upload that the service refuses if the blob exists."""
    if _remote(target):
        try:
            target.fs.pipe_file(target.path, text.encode("utf-8"), overwrite=False)
        except FileExistsError:
            raise _conflict(target) from None
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _conflict(target) from None
    finally:
        tmp.unlink(missing_ok=True)
