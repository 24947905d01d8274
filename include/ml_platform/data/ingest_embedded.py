"""Bring-your-own-file ingestion on the embedded engine: DuckDB reads and casts the files, delta-rs
appends them to bronze, no JVM. The same contract as `data.ingest` (Spark): the same checks before
anything is written (UTF-8, readable Parquet, one type family per column, required columns, a
column unreadable as its type), the same content-hash `load_id` dedup, and the casts of Spark's
`try_cast` (a value Spark reads as NULL is NULL here too: integer syntax for integers, no `_` in
numbers, a year or year-month is a timestamp, hour 24 is not). tests/spark/test_plane_parity.py
holds the two engines to the same rows, bit for bit.
"""

from __future__ import annotations

import re
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import Contract
from ml_platform.data.ingest import (
    UNREADABLE_SHARE,
    IngestResult,
    check_header,
    check_parquet,
    check_utf8,
    file_load_id,
    header_names,
    ingest_files,
)
from ml_platform.engines import EmbeddedEngine
from ml_platform.errors import DataContractError
from ml_platform.lake.paths import table_path
from ml_platform.lake.storage import open_binary
from ml_platform.locations import is_remote

if TYPE_CHECKING:
    import pyarrow as pa

_DUCK = {"string": "VARCHAR", "double": "DOUBLE", "int": "INTEGER", "timestamp": "TIMESTAMPTZ", "date": "DATE"}
#: Java DateTimeFormatter letters (Spark's `--timestamp-format`): the strptime equivalent, and the
#: text Spark's parser accepts for it (a doubled letter is exactly two digits, a single one one or two)
_PATTERN = [
    ("yyyy", "%Y", r"\d{4}"), ("yy", "%y", r"\d{2}"), ("MM", "%m", r"\d{2}"), ("M", "%m", r"\d{1,2}"),
    ("dd", "%d", r"\d{2}"), ("d", "%d", r"\d{1,2}"), ("HH", "%H", r"\d{2}"), ("H", "%H", r"\d{1,2}"),
    ("hh", "%I", r"\d{2}"), ("h", "%I", r"\d{1,2}"), ("mm", "%M", r"\d{2}"), ("m", "%M", r"\d{1,2}"),
    ("ss", "%S", r"\d{2}"), ("s", "%S", r"\d{1,2}"), ("SSSSSS", "%f", r"\d{6}"), ("SSS", "%g", r"\d{3}"),
    ("a", "%p", "(AM|PM|am|pm)"), ("XXX", "%z", r"(Z|[+-]\d{2}:\d{2})"), ("XX", "%z", r"(Z|[+-]\d{4})"),
    ("X", "%z", r"(Z|[+-]\d{2})"), ("Z", "%z", r"[+-]\d{4}"),
]  # fmt: skip


def strptime_format(java: str) -> tuple[str, str]:
    """A Java date-time pattern (Spark's) as a DuckDB strptime format and the regular expression of
    the text Spark accepts for it; `DataContractError` names a letter it cannot translate."""
    out, regex, i = [], [], 0
    while i < len(java):
        ch = java[i]
        if ch == "'":  # quoted literal, '' is a quote
            end = java.find("'", i + 1)
            if end == -1:
                raise DataContractError(f"--timestamp-format {java!r}: unclosed quote")
            literal = java[i + 1 : end] or "'"
            out.append(literal.replace("%", "%%"))
            regex.append(re.escape(literal))
            i = end + 1
            continue
        if ch.isalpha():
            for token, fmt, rx in _PATTERN:
                if java.startswith(token, i):
                    out.append(fmt)
                    regex.append(rx)
                    i += len(token)
                    break
            else:
                raise DataContractError(
                    f"--timestamp-format {java!r}: pattern letter {ch!r} is not read by the embedded engine "
                    "(set ML_PLATFORM_ENGINE_DATA_PLANE=spark)"
                )
            continue
        out.append("%%" if ch == "%" else ch)
        regex.append(re.escape(ch))
        i += 1
    return "".join(out), "^" + "".join(regex) + "$"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def cast_sql(raw: str, source_type: str, spark_type: str, timestamp_format: str | None = None) -> str:
    """DuckDB SQL casting the column expression `raw` (of DuckDB type `source_type`) to the contract
    type `spark_type` as Spark's `try_cast` does (data.ingest._typed): NULL where Spark gives NULL."""
    text = source_type.upper() in ("VARCHAR", "STRING") or source_type.upper().startswith("VARCHAR")
    floating = source_type.upper() in ("DOUBLE", "FLOAT", "REAL") or source_type.upper().startswith("DECIMAL")
    if spark_type == "string":
        return f"CAST({raw} AS VARCHAR)"
    if spark_type == "double":
        if not text:
            return f"TRY_CAST({raw} AS DOUBLE)"
        number = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[dDfF]?\s*$"
        special = r"^\s*[+-]?(nan|inf|infinity)\s*$"
        return (
            f"CASE WHEN regexp_matches({raw}, '{number}') THEN TRY_CAST(regexp_replace(trim({raw}), '[dDfF]$', '') "
            f"AS DOUBLE) WHEN regexp_matches(lower({raw}), '{special}') THEN TRY_CAST(trim({raw}) AS DOUBLE) END"
        )
    if spark_type == "int":
        if text:
            return rf"CASE WHEN regexp_matches({raw}, '^\s*[+-]?\d+\s*$') THEN TRY_CAST(trim({raw}) AS INTEGER) END"
        return f"TRY_CAST(trunc({raw}) AS INTEGER)" if floating else f"TRY_CAST({raw} AS INTEGER)"
    if spark_type not in ("timestamp", "date"):
        raise ValueError(f"no embedded cast to {spark_type}")
    target = _DUCK[spark_type]
    if not text:
        if source_type.upper() in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT"):
            seconds = f"to_timestamp(CAST({raw} AS DOUBLE))"  # Spark: seconds since the epoch
            return seconds if spark_type == "timestamp" else f"CAST({seconds} AS DATE)"
        return f"TRY_CAST({raw} AS {target})"
    if timestamp_format:
        fmt, regex = strptime_format(timestamp_format)
        parsed = f"CAST(CAST(try_strptime(trim({raw}), {_lit(fmt)}) AS TIMESTAMPTZ) AS {target})"
        return f"CASE WHEN regexp_full_match(trim({raw}), {_lit(regex)}) THEN {parsed} END"
    t = f"trim({raw})"
    return (
        rf"CASE WHEN regexp_matches({raw}, '[ T]24:') THEN NULL "
        rf"WHEN regexp_matches({t}, '^\d{{4}}$') THEN TRY_CAST({t} || '-01-01' AS {target}) "
        rf"WHEN regexp_matches({t}, '^\d{{4}}-\d{{1,2}}$') THEN TRY_CAST({t} || '-01' AS {target}) "
        f"ELSE TRY_CAST({t} AS {target}) END"
    )


def _local_copies(files: list[str], folder: Path) -> dict[str, str]:
    """Local paths DuckDB reads for `files`: a local file itself, a file in Azure Storage copied
    (whole) into `folder`."""
    out = {}
    for i, f in enumerate(files):
        if not is_remote(f):
            out[f] = str(Path(f).resolve())
            continue
        copy = folder / f"{i:06d}{Path(f).suffix}"
        with open_binary(f) as src, copy.open("wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
        out[f] = str(copy)
    return out


def _whitespace_table(path: str) -> pa.Table:
    """A whitespace-separated text file (header first) as strings: runs of blanks split values,
    as Spark's `sep=' '` with the leading/trailing white-space options reads it."""
    import pyarrow as pa

    text = [ln for ln in Path(path).read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    if not text:
        return pa.table({})
    header, rows = header_names(text[0], " "), [ln.split() for ln in text[1:]]
    return pa.table({h: [r[i] if i < len(r) else None for r in rows] for i, h in enumerate(header)})


def _free_name(con: Any, relation: str) -> str:
    """A column name for the file read that none of `relation`'s own columns has (DuckDB compares
    names without case): a file may well carry a `__file` or `filename` column of its own."""
    taken = {c.lower() for c in con.sql(f"SELECT * FROM {relation} LIMIT 0").columns}
    name = "__file"
    while name in taken:
        name += "_"
    return name


def _register_sources(con: Any, copies: dict[str, str], fmt: str, delimiter: str) -> list[tuple[str, list[str], str]]:
    """One DuckDB view per read (all Parquet files at once, schemas merged; each CSV on its own, with
    its own header), each with a column naming the local path read, under a name the files do not
    use; [(view, [original files], that column)]."""
    views = []
    if fmt == "parquet":
        read = f"read_parquet([{', '.join(_lit(p) for p in copies.values())}], union_by_name = true"
        column = _free_name(con, read + ")")
        con.execute(f"CREATE VIEW src0 AS SELECT * FROM {read}, filename = {_lit(column)})")
        return [("src0", list(copies), column)]
    for i, (original, local) in enumerate(copies.items()):
        view = f"src{i}"
        if delimiter.strip() == "" and delimiter != "":
            con.register(f"{view}_ws", _whitespace_table(local))
            read = f"{view}_ws"
        else:
            read = (
                f"read_csv({_lit(local)}, header = true, all_varchar = true, delim = {_lit(delimiter)}, "
                "null_padding = true)"
            )
        column = _free_name(con, read)
        con.execute(f"CREATE VIEW {view} AS SELECT *, {_lit(local)} AS {_q(column)} FROM {read}")
        views.append((view, [original], column))
    return views


def conform_sql(
    con: Any, view: str, contract: Contract, timestamp_format: str | None, source: str, file_column: str
) -> tuple[str, list[tuple[str, str, str]]]:
    """The SELECT list casting `view`'s columns to `contract` (missing optional columns as NULL), and
    the columns to check for readability [(contract column, raw expression, cast expression)];
    `file_column` is the view's own, not the file's. `DataContractError` names a missing required column."""
    described = con.sql(f"SELECT * FROM {view} LIMIT 0")
    found = [c for c in described.columns if c != file_column]
    types = dict(zip(described.columns, [str(t) for t in described.types]))
    present = {c.lower(): c for c in found}
    missing = [c for c in contract.required if c.lower() not in present]
    if missing:
        raise DataContractError(
            f"{source}: missing required column(s) {', '.join(missing)} for {contract.name}; "
            f"found columns: {', '.join(found) or '(none)'}"
        )
    select, checks = [], []
    for c in contract.columns:
        if c.name.lower() not in present:
            select.append(f"CAST(NULL AS {_DUCK[c.spark_type]}) AS {_q(c.name)}")
            continue
        name = present[c.name.lower()]
        raw = _q(name)
        cast = cast_sql(raw, types[name], c.spark_type, timestamp_format)
        select.append(f"{cast} AS {_q(c.name)}")
        if c.spark_type != "string":
            checks.append((c.name, raw, cast))
    return ", ".join(select), checks


def _check_readable(con: Any, view: str, checks: list[tuple[str, str, str]], contract: Contract, source: str) -> None:
    """A column more than `UNREADABLE_SHARE` of whose values fail the cast rejects the file."""
    if not checks:
        return
    parts = []
    for name, raw, cast in checks:
        parts.append(f"count({raw}) AS {_q(name + '__n')}")
        parts.append(f"count(*) FILTER (WHERE {raw} IS NOT NULL AND ({cast}) IS NULL) AS {_q(name + '__bad')}")
    row = con.execute(f"SELECT {', '.join(parts)} FROM {view}").fetchall()[0]
    types = {c.name: c.spark_type for c in contract.columns}
    for i, (name, raw, cast) in enumerate(checks):
        n, bad = row[2 * i], row[2 * i + 1]
        if n and bad / n > UNREADABLE_SHARE:
            examples = [
                r[0]
                for r in con.sql(
                    f"SELECT CAST({raw} AS VARCHAR) FROM {view} WHERE {raw} IS NOT NULL AND ({cast}) IS NULL LIMIT 3"
                ).fetchall()
            ]
            hint = " (use --timestamp-format)" if types[name] in ("timestamp", "date") else ""
            raise DataContractError(
                f"{source}: column {name} cannot be read as {types[name]}: {bad} of {n} values fail, "
                f"e.g. {examples}{hint}"
            )


def bronze_schema(contract: Contract) -> pa.Schema:
    """The Arrow schema of bronze.<contract> as Spark writes it (contract columns, then the tags)."""
    import pyarrow as pa

    arrow = {
        "string": pa.string(),
        "double": pa.float64(),
        "int": pa.int32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }
    return pa.schema(
        [pa.field(c.name, arrow[c.spark_type]) for c in contract.columns]
        + [pa.field("source_file", pa.string()), pa.field("load_id", pa.string()), pa.field("ingest_date", pa.date32())]
    )


def loaded_ids(path: str, wanted: set[str]) -> set[str]:
    """Which of the load ids `wanted` bronze at `path` already holds (none when it does not exist)."""
    import duckdb

    from ml_platform.lake.delta_log import DeltaView, snapshot

    snap = snapshot(path)
    if snap is None or not wanted:
        return set()
    con = duckdb.connect()
    try:
        DeltaView(snap, columns=["load_id"]).register_in(con, "bronze")
        ids = ", ".join(_lit(i) for i in sorted(wanted))
        return {r[0] for r in con.sql(f"SELECT DISTINCT load_id FROM bronze WHERE load_id IN ({ids})").fetchall()}
    finally:
        con.close()


@ingest_files.register(EmbeddedEngine)
def _ingest_files_embedded(
    engine: EmbeddedEngine,
    files: dict[str, date],
    contract: Contract,
    *,
    fmt: str,
    delimiter: str = ",",
    timestamp_format: str | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """`data.ingest.ingest_files` on the embedded engine: DuckDB reads and casts, delta-rs appends."""
    import duckdb
    import pyarrow as pa

    from ml_platform.lake.rows import append

    s = settings or get_settings()
    table = f"bronze.{contract.name}"
    path = table_path(table, s)
    ids = {f: file_load_id(f) for f in files}
    loaded = loaded_ids(path, set(ids.values()))
    new = [f for f in files if ids[f] not in loaded]
    days = sorted(set(files.values()))
    if not new:
        return IngestResult(table, days[0] if days else date.min, len(files), 0, 0, tuple(sorted(set(ids.values()))))
    if fmt == "parquet":
        check_parquet([str(f) for f in new])
    else:
        check_utf8([str(f) for f in new])
        check_header([str(f) for f in new], delimiter)
    with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
        copies = _local_copies([str(f) for f in new], Path(tmp))
        by_local = {local: f for f, local in copies.items()}
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            tags = {
                "__file": [str(local) for local in by_local],
                "source_file": [str(f) for f in by_local.values()],
                "load_id": [ids[f] for f in by_local.values()],
                "ingest_date": [files[f] for f in by_local.values()],
            }
            con.register("tags", pa.table(tags))
            selects = []
            for view, originals, column in _register_sources(con, copies, fmt, delimiter):
                source = ", ".join(originals[:3])
                select, checks = conform_sql(con, view, contract, timestamp_format, source, column)
                _check_readable(con, view, checks, contract, source)
                selects.append(
                    f"SELECT {select}, t.source_file, t.load_id, t.ingest_date FROM {view} v "
                    f"JOIN tags t ON v.{_q(column)} = t.__file"
                )
            out = con.sql(" UNION ALL ".join(selects)).to_arrow_table().cast(bronze_schema(contract))
        finally:
            con.close()
    append(path, out, partition_by=["ingest_date"])
    return IngestResult(table, days[0], len(files), len(new), out.num_rows, tuple(sorted(ids[f] for f in new)))
