"""Bring-your-own-file ingestion into bronze: contract check, typed cast, append. The operation
`ingest_files` is implemented here for Spark and in `data.ingest_embedded` for the embedded engine.

A file is identified by the hash of its bytes (`load_id`): re-ingesting the same file is a
no-op. The contract is checked before anything is written, so a rejected file leaves bronze
exactly as it was. Individual bad rows are kept (typed, bad values as NULL) for the gate to
quarantine; only a column that cannot be read as its type at all rejects the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ml_platform.config import Settings, get_settings
from ml_platform.contracts import Contract
from ml_platform.engines import Engine, SparkEngine, operation
from ml_platform.errors import DataContractError
from ml_platform.lake import storage
from ml_platform.lake.delta_sql import is_delta
from ml_platform.lake.paths import table_path
from ml_platform.lake.storage import open_binary
from ml_platform.locations import is_remote, normalize

if TYPE_CHECKING:
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame, SparkSession

#: A column is unreadable when more than this share of its non-null values fail the cast.
UNREADABLE_SHARE = 0.5
_EXTENSIONS = {"csv": (".csv", ".txt", ".tsv"), "parquet": (".parquet",)}


@dataclass(frozen=True)
class IngestResult:
    table: str
    ingest_date: date
    files: int
    new_files: int
    rows: int
    load_ids: tuple[str, ...]


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def list_files(source: str | Path, fmt: str | None) -> tuple[list[str], str]:
    """Files to read under `source` (a file or a folder; a local path, an `abfss://` URI or a
    Blob `https://` URL) and their format. Hidden (`.x`, `_x`) and in-flight (`.tmp`) files are left out."""
    found = storage.list_files(source)
    if not found:
        raise DataContractError(f"input {source} does not exist or holds no file")
    single = len(found) == 1 and normalize(source) == found[0]
    files = (
        found
        if single
        else [
            f
            for f in found
            if not any(part.startswith((".", "_")) for part in f[len(normalize(source)) :].split("/"))
            and not f.endswith(".tmp")
        ]
    )
    if fmt is None:
        suffixes = {_suffix(f) for f in files}
        fmt = "parquet" if suffixes and suffixes <= {".parquet"} else "csv"
    if fmt not in _EXTENSIONS:
        raise DataContractError(f"unknown format {fmt!r}: use csv or parquet")
    if not single:
        files = [f for f in files if _suffix(f) in _EXTENSIONS[fmt]]
    if not files:
        raise DataContractError(f"no {fmt} files under {source}")
    return files, fmt


def file_load_id(path: str | Path) -> str:
    """Content hash of a file (local or in Azure Storage): the same bytes always give the same
    load id, wherever they landed."""
    h = hashlib.sha256()
    with open_binary(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:24]


def _kind(arrow_type: object) -> str:
    """What Spark's schema merge treats as one type: integers of any width, floats of any width."""
    import pyarrow.types as t

    if t.is_integer(arrow_type):
        return "integer"
    if t.is_floating(arrow_type):
        return "floating"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "string"
    return str(arrow_type)


def check_parquet(files: list[str]) -> None:
    """Each file's footer read (a truncated, empty or non-Parquet file named) and each column of one
    type family across the files (`mergeSchema` would fail on the first job action, with a stack
    trace), before Spark reads anything and before anything is written."""
    import pyarrow.parquet as pq

    seen: dict[str, tuple[str, str, str]] = {}
    for f in files:
        try:
            with open_binary(f) as fh:
                schema = pq.read_schema(fh)
        except Exception as e:  # noqa: BLE001 - pyarrow's ArrowInvalid/OSError: the file is the problem
            raise DataContractError(
                f"{f} is not a readable Parquet file ({str(e)[:200]}): truncated, empty or another format; "
                "export or upload it again"
            ) from None
        for field in schema:
            kind = _kind(field.type)
            first = seen.setdefault(field.name, (kind, str(field.type), f))
            if first[0] != kind:
                raise DataContractError(
                    f"column {field.name} is {first[1]} in {first[2]} but {field.type} in {f}: "
                    "files ingested together must agree on each column's type"
                )


def check_utf8(files: list[str], chunk: int = 1 << 20) -> None:
    """Each text file decodes as UTF-8 (a byte order mark allowed), streamed. Spark would turn every
    invalid byte into U+FFFD without a word, so a Latin-1 export would land as mangled ids and
    names: the file, line and byte are named instead, before anything is written."""
    import codecs

    for f in files:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, line = 0, 1
        with open_binary(f) as fh:
            while True:
                data = fh.read(chunk)
                pending = len(decoder.getstate()[0])  # a character cut by the previous chunk
                try:
                    decoder.decode(data, final=not data)
                except UnicodeDecodeError as e:
                    buf = e.object  # the pending bytes, then this chunk
                    line += buf[: e.start].count(b"\n")
                    raise DataContractError(
                        f"{f} is not UTF-8: byte 0x{buf[e.start : e.start + 1].hex()} at offset "
                        f"{offset - pending + e.start} (line {line}); export it again as UTF-8 "
                        "(e.g. Excel's 'CSV UTF-8')"
                    ) from None
                if not data:
                    break
                line += data.count(b"\n")
                offset += len(data)


def header_names(line: str, delimiter: str) -> list[str]:
    """The column names of a text file's header line (a byte order mark dropped), split as the
    readers split it: runs of blanks for whitespace-separated text, else CSV with `delimiter`."""
    import csv

    line = line.lstrip("\ufeff").rstrip("\r\n")
    if delimiter.strip() == "" and delimiter != "":
        return line.split()
    return next(csv.reader([line], delimiter=delimiter), [])


def check_header(files: list[str], delimiter: str) -> None:
    """Each text file has a header line, and no column name in it twice (compared without case, as
    columns are matched to the contract): Spark would rename the copies (`amount3`, `amount4`) and
    then miss the column, DuckDB would keep the first; the file and the column are named instead."""
    for f in files:
        with open_binary(f) as fh:
            first = fh.readline().decode("utf-8", errors="replace")
        names = [n.strip() for n in header_names(first, delimiter)]
        if not any(names):
            raise DataContractError(f"{f} is empty: no header line with column names")
        seen: dict[str, int] = {}
        for i, n in enumerate(names, 1):
            if n.lower() in seen:
                raise DataContractError(
                    f"{f}: column {n!r} appears twice in the header (columns {seen[n.lower()]} and {i}); "
                    "keep one of them"
                )
            seen[n.lower()] = i


def _read(spark: SparkSession, files: list[str], fmt: str, delimiter: str) -> DataFrame:
    paths = [str(p) for p in files]
    if fmt == "parquet":
        return spark.read.parquet(*paths)
    reader = spark.read.option("header", "true").option("inferSchema", "false").option("mode", "PERMISSIVE")
    if delimiter.strip() == "" and delimiter != "":
        # whitespace-separated text: split on runs of whitespace
        reader = (
            reader.option("sep", " ")
            .option("ignoreLeadingWhiteSpace", "true")
            .option("ignoreTrailingWhiteSpace", "true")
        )
    else:
        reader = reader.option("sep", delimiter)
    return reader.csv(paths)  # Spark drops a UTF-8 byte order mark (tests/spark/test_ingest_byo.py)


def typed_column(col: SparkColumn, spark_type: str, timestamp_format: str | None) -> SparkColumn:
    from pyspark.sql import functions as F

    if spark_type == "timestamp":
        as_str = col.cast("string")
        if timestamp_format:
            return F.try_to_timestamp(as_str, F.lit(timestamp_format))
        return F.coalesce(col.try_cast("timestamp"), F.try_to_timestamp(as_str))
    if spark_type == "date":
        as_str = col.cast("string")
        if timestamp_format:
            return F.try_to_timestamp(as_str, F.lit(timestamp_format)).cast("date")
        return col.try_cast("date")
    return col.try_cast(spark_type)


def conform(
    df: DataFrame,
    contract: Contract,
    timestamp_format: str | None = None,
    source: str = "input",
    keep: tuple[str, ...] = (),
) -> DataFrame:
    """Check `df` against `contract` and cast it to the contract's types.

    Raises DataContractError naming the column (and a few offending values) when a required
    column is missing or a column cannot be read as its type.
    """
    from pyspark.sql import functions as F

    present = {c.lower(): c for c in df.columns if c not in keep}
    missing = [c for c in contract.required if c.lower() not in present]
    if missing:
        raise DataContractError(
            f"{source}: missing required column(s) {', '.join(missing)} for {contract.name}; "
            f"found columns: {', '.join(df.columns) or '(none)'}"
        )
    typed = []
    for c in contract.columns:
        if c.name.lower() in present:
            raw = F.col(f"`{present[c.name.lower()]}`")
            typed.append((c, raw, typed_column(raw, c.spark_type, timestamp_format).alias(c.name)))
        else:
            typed.append((c, None, F.lit(None).cast(c.spark_type).alias(c.name)))
    checks = [c for c, raw, _ in typed if raw is not None and c.spark_type != "string"]
    if checks:
        stats = df.select(
            *[F.col(f"`{present[c.name.lower()]}`").alias(f"raw_{c.name}") for c, raw, _ in typed if raw is not None],
            *[cast for _, raw, cast in typed if raw is not None],
        )
        row = stats.select(
            *[
                F.struct(
                    F.count(F.col(f"raw_{c.name}")).alias("n"),
                    F.sum(F.when(F.col(f"raw_{c.name}").isNotNull() & F.col(c.name).isNull(), 1).otherwise(0)).alias(
                        "bad"
                    ),
                ).alias(c.name)
                for c in checks
            ]
        ).first()
        for c in checks:
            n, bad = row[c.name]["n"], row[c.name]["bad"] or 0
            if n and bad / n > UNREADABLE_SHARE:
                examples = [
                    r[0]
                    for r in stats.where(F.col(f"raw_{c.name}").isNotNull() & F.col(c.name).isNull())
                    .select(F.col(f"raw_{c.name}").cast("string"))
                    .limit(3)
                    .collect()
                ]
                hint = " (use --timestamp-format)" if c.spark_type in ("timestamp", "date") else ""
                raise DataContractError(
                    f"{source}: column {c.name} cannot be read as {c.spark_type}: {bad} of {n} values "
                    f"fail, e.g. {examples}{hint}"
                )
    return df.select(*[cast for _, _, cast in typed], *keep)


def ingest(
    engine: Engine,
    source: str | Path,
    contract: Contract,
    ingest_date: date,
    *,
    fmt: str | None = None,
    delimiter: str = ",",
    timestamp_format: str | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """Append the new files under `source` to bronze.<contract>; already-loaded files are skipped."""
    files, fmt = list_files(source, fmt)
    return ingest_files(
        engine,
        {f: ingest_date for f in files},
        contract,
        fmt=fmt,
        delimiter=delimiter,
        timestamp_format=timestamp_format,
        settings=settings,
    )


@operation
def ingest_files(
    engine: Engine,
    files: dict[str, date],
    contract: Contract,
    *,
    fmt: str,
    delimiter: str = ",",
    timestamp_format: str | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """Append `files` (each with its ingest_date) to bronze.<contract> in one Delta commit. Files
    whose content hash is already in bronze are skipped; every check of the contract runs before
    anything is written, so a rejected file leaves bronze as it was."""


@ingest_files.register(SparkEngine)
def _ingest_files_spark(
    engine: SparkEngine,
    files: dict[str, date],
    contract: Contract,
    *,
    fmt: str,
    delimiter: str = ",",
    timestamp_format: str | None = None,
    settings: Settings | None = None,
) -> IngestResult:
    """Parquet files are read in one pass (schemas merged); CSV files one by one, since each may
    carry its own header."""
    from pyspark.sql import functions as F

    spark = engine.spark
    s = settings or get_settings()
    table = f"bronze.{contract.name}"
    path = table_path(table, s)
    ids = {f: file_load_id(f) for f in files}
    loaded: set[str] = set()
    if is_delta(path):
        wanted = list(set(ids.values()))
        loaded = {
            r.load_id
            for r in spark.read.format("delta")
            .load(path)
            .where(F.col("load_id").isin(wanted))
            .select("load_id")
            .distinct()
            .collect()
        }
    new = [f for f in files if ids[f] not in loaded]
    days = sorted(set(files.values()))
    if not new:
        return IngestResult(table, days[0] if days else date.min, len(files), 0, 0, tuple(sorted(set(ids.values()))))
    keep = ("source_file", "load_id", "ingest_date")

    def tag(df: DataFrame, group: list[str]) -> DataFrame:
        # Spark reports local files as file:/abs/path (or file:///abs/path): compare on the path
        uri = F.url_decode(F.regexp_replace(F.col("_metadata.file_path"), "^file:(//)?", ""))
        by_uri = {(f if is_remote(f) else str(Path(f).resolve())): f for f in group}
        return df.withColumns(
            {
                "source_file": F.element_at(
                    F.create_map(*[x for u, f in by_uri.items() for x in (F.lit(u), F.lit(str(f)))]), uri
                ),
                "load_id": F.element_at(
                    F.create_map(*[x for u, f in by_uri.items() for x in (F.lit(u), F.lit(ids[f]))]), uri
                ),
                "ingest_date": F.element_at(
                    F.create_map(*[x for u, f in by_uri.items() for x in (F.lit(u), F.lit(files[f].isoformat()))]), uri
                ).cast("date"),
            }
        )

    if fmt == "parquet":
        check_parquet([str(f) for f in new])
        raw = spark.read.option("mergeSchema", "true").parquet(*[str(f) for f in new])
        frames = [
            conform(tag(raw, new), contract, timestamp_format, source=", ".join(str(f) for f in new[:3]), keep=keep)
        ]
    else:
        check_utf8([str(f) for f in new])
        check_header([str(f) for f in new], delimiter)
        frames = [
            conform(tag(_read(spark, [f], fmt, delimiter), [f]), contract, timestamp_format, source=str(f), keep=keep)
            for f in new
        ]
    out = frames[0]
    for fr in frames[1:]:
        out = out.unionByName(fr)
    out = out.persist()
    stats = out.select(
        F.count(F.lit(1)).alias("rows"), F.sum(F.col("load_id").isNull().cast("int")).alias("untagged")
    ).first()
    if stats["untagged"]:
        out.unpersist()
        raise DataContractError(f"could not attribute {stats['untagged']} rows to their source file")
    out.write.format("delta").mode("append").partitionBy("ingest_date").save(path)
    out.unpersist()
    return IngestResult(table, days[0], len(files), len(new), stats["rows"], tuple(sorted(ids[f] for f in new)))


# the embedded engine's implementations register themselves on import
from ml_platform.data import ingest_embedded as _ingest_embedded  # noqa: E402, F401
