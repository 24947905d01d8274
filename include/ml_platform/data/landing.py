"""Files into the landing zone: the layout `<landing>/<table>/<YYYY-MM-DD>/<file>` that ingestion
reads (`pipelines.data_plane.landed_days`), on a local folder or a Blob container.

`land` copies day folders of that layout (e.g. what `ml-platform data generate --out DIR` wrote,
or a partner's delivery) into the landing zone, a day range at a time, as a delivery would arrive.
Each file appears whole: locally it is written under a `.tmp` name and renamed (ingestion skips
`.tmp` files); on Blob Storage one upload is one blob.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from ml_platform.errors import ConfigError


def source_days(source: Path, table: str) -> list[date]:
    """The day folders of `table` under `source` (sorted); folders not named YYYY-MM-DD are ignored."""
    days = []
    for d in (source / table).iterdir() if (source / table).is_dir() else ():
        try:
            days.append(date.fromisoformat(d.name))
        except ValueError:
            continue
    return sorted(days)


def land(source: Path, landing: Any, table: str, days: Iterable[date] | None = None) -> int:
    """Copy the files of `table`'s day folders under `source` (those of `days`, else all) into
    `landing` (a `Path`, or a `UPath` of a Blob container); the number of day folders copied."""
    wanted = None if days is None else {d.isoformat() for d in days}
    n = 0
    for day in source_days(source, table):
        if wanted is not None and day.isoformat() not in wanted:
            continue
        folder = source / table / day.isoformat()
        for f in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
            dest = landing.joinpath(table, *f.relative_to(source / table).parts)
            if hasattr(dest, "fs"):  # a UPath: its fsspec filesystem uploads the blob in one piece
                dest.write_bytes(f.read_bytes())
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            tmp.write_bytes(f.read_bytes())
            tmp.replace(dest)
        n += 1
    return n


def land_range(source: Path, landing: Any, start: date | None = None, end: date | None = None) -> dict[str, int]:
    """Every table's day folders under `source` with start <= day <= end (open ends: all) into
    `landing`; day folders copied per table. A source without any table folder is an error."""
    found = (
        {p.name: source_days(source, p.name) for p in sorted(source.iterdir()) if p.is_dir()} if source.is_dir() else {}
    )
    tables = {table: days for table, days in found.items() if days}
    if not tables:
        raise ConfigError(f"no <table>/<YYYY-MM-DD>/ folders under {source}")
    return {
        table: land(
            source, landing, table, [d for d in days if (start is None or d >= start) and (end is None or d <= end)]
        )
        for table, days in tables.items()
    }
