"""The bronze -> silver gate: run the GE suite, route failing rows to quarantine, decide.

Two engines, one suite: `run_gate` takes a Spark DataFrame (GE's Spark data source, the rules'
Spark predicates), `run_gate_arrow` an Arrow table (GE's pandas data source, the rules' DuckDB
predicates); both return the same result for the same rows (tests/spark/test_plane_parity.py).
`pipelines.data_plane.validate_to_silver` runs the one its engine reads batches as.
Neither writes silver. It returns the valid rows, the quarantined rows (with the names
of the rules each broke) and a JSON-able result; the caller writes quarantine always and
silver only when `result["success"]` is true. The run fails when a table-level expectation
fails, when the quarantined share exceeds the configured maximum, or when GE and the Spark
predicates disagree on a rule's count (a bug, never silently ignored).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.contracts import TRANSACTIONS
from ml_platform.validation.rules import ROW_RULES, RuleContext

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame
SUITE_NAME = "transactions_bronze_to_silver"


@dataclass
class GateResult:
    """The gate's verdict on one batch of bronze rows (`to_json`: the saved result and what a task
    returns). A batch with nothing to check is `skipped` (with the reason) and succeeds."""

    suite: str = SUITE_NAME
    run_name: str = ""
    interval_end: str = ""
    rows_in: int = 0
    exact_duplicates_dropped: int = 0
    rows_validated: int = 0
    quarantined: int = 0
    quarantined_share: float = 0.0
    quarantine_max_share: float = 0.0
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # per rule: quarantined beside GE's count
    table_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    success: bool = True
    data_docs: str | None = None
    interval: list[str] | None = None  # [start, end) of the ingest dates, once recorded
    result_path: str | None = None  # the saved JSON, once recorded
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped, "success": True}
        out = asdict(self)
        out.pop("skipped")
        if self.interval is None:
            out.pop("interval")
            out.pop("result_path")
        return out


@dataclass
class GateOutcome:
    valid: Any  # Spark DataFrame (run_gate) or Arrow table (run_gate_arrow)
    quarantine: Any  # the same, with `failed_rules`
    result: GateResult

    @property
    def success(self) -> bool:
        return self.result.success


def _table_expectations(rows_expected: tuple[int, int] | None) -> list[Any]:
    import great_expectations.expectations as gxe

    out: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=TRANSACTIONS.names, exact_match=False, meta={"rule": "contract_columns_present"}
        )
    ]
    if rows_expected is not None:
        lo, hi = rows_expected
        out.append(
            gxe.ExpectTableRowCountToBeBetween(min_value=lo, max_value=hi, meta={"rule": "row_count_vs_previous_day"})
        )
    return out


def _validate_with_ge(
    df: DataFrame, expectations: list[Any], docs_root: Path | None, run_name: str
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Run the suite on `df`; returns {rule name: GE result} and the data docs index path."""
    import great_expectations as gx

    if docs_root is not None:
        docs_root.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(docs_root))
    else:
        context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # task logs, not a terminal
    if type(df).__module__.startswith("pandas"):  # the embedded engine's batch
        ds = context.data_sources.add_or_update_pandas(name="lake_embedded")
    else:
        ds = context.data_sources.add_or_update_spark(name="lake")
    asset = next((a for a in ds.assets if a.name == "bronze_transactions"), None) or ds.add_dataframe_asset(
        "bronze_transactions"
    )
    batch_def = next(
        (b for b in asset.batch_definitions if b.name == "batch"), None
    ) or asset.add_batch_definition_whole_dataframe("batch")
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for e in expectations:
        suite.add_expectation(e)
    suite = context.suites.add_or_update(suite)
    vd = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=SUITE_NAME, data=batch_def, suite=suite)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_root is not None else []
    cp = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=SUITE_NAME, validation_definitions=[vd], actions=actions, result_format={"result_format": "SUMMARY"}
        )
    )
    run = cp.run(batch_parameters={"dataframe": df}, run_id=gx.RunIdentifier(run_name=run_name))
    by_rule: dict[str, dict[str, Any]] = {}
    for vr in run.run_results.values():
        for r in vr.results:
            rule = (r.expectation_config.meta or {}).get("rule", r.expectation_config.type)
            by_rule[rule] = {
                "success": bool(r.success),
                "unexpected_count": (r.result or {}).get("unexpected_count"),
                "observed_value": (r.result or {}).get("observed_value"),
                "exception": (r.exception_info or {}).get("exception_message") if not r.success else None,
            }
    index = None
    if docs_root is not None:
        sites = context.get_docs_sites_urls()
        index = next((s["site_url"] for s in sites if s.get("site_url")), None)
    return by_rule, index


def run_gate(
    batch: DataFrame,
    ctx: RuleContext,
    *,
    quarantine_max_share: float,
    rows_expected: tuple[int, int] | None = None,
    docs_root: Path | None = None,
    run_name: str = "gate",
) -> GateOutcome:
    """Validate one bronze batch (contract columns plus ingest metadata)."""
    from pyspark.sql import functions as F

    rows_in = batch.count()
    # exact duplicate rows (same values in every contract column) are a delivery artefact,
    # not a conflict: keep one copy, count the rest
    deduped = batch.dropDuplicates(TRANSACTIONS.names).persist()
    rows = deduped.count()
    ge_results, docs = _validate_with_ge(
        deduped.select(*TRANSACTIONS.names),
        [r.expectation(ctx) for r in ROW_RULES] + _table_expectations(rows_expected),
        docs_root,
        run_name,
    )

    flagged = deduped.withColumn(
        "failed_rules",
        F.filter(F.array(*[F.when(r.violates(ctx), F.lit(r.name)) for r in ROW_RULES]), lambda x: x.isNotNull()),
    ).persist()
    counts_row = flagged.select(
        *[F.sum(F.when(F.array_contains("failed_rules", r.name), 1).otherwise(0)).alias(r.name) for r in ROW_RULES]
    ).first()
    quarantine = flagged.where(F.size("failed_rules") > 0)
    valid = flagged.where(F.size("failed_rules") == 0).drop("failed_rules")
    quarantined = quarantine.count()

    counts = {r.name: int(counts_row[r.name] or 0) for r in ROW_RULES}
    result = _result(rows_in, rows, quarantined, counts, ge_results, docs, ctx, quarantine_max_share, run_name)
    return GateOutcome(valid=valid, quarantine=quarantine, result=result)


def _result(
    rows_in: int,
    rows: int,
    quarantined: int,
    counts: dict[str, int],
    ge_results: dict[str, dict[str, Any]],
    docs: str | None,
    ctx: RuleContext,
    quarantine_max_share: float,
    run_name: str,
) -> GateResult:
    """The gate's result: per-rule counts beside GE's, table checks, failures, the verdict."""
    share = quarantined / rows if rows else 0.0
    rules: dict[str, Any] = {}
    mismatches = []
    for r in ROW_RULES:
        ge = ge_results.get(r.name, {})
        rules[r.name] = {
            "description": r.description,
            "quarantined": counts[r.name],
            "ge_unexpected_count": ge.get("unexpected_count"),
            "ge_success": ge.get("success"),
        }
        if ge.get("unexpected_count") != counts[r.name]:
            mismatches.append(r.name)
    table_checks = {k: v for k, v in ge_results.items() if k not in rules}
    failures = [
        f"table expectation {k} failed (observed {v['observed_value']})"
        for k, v in table_checks.items()
        if not v["success"]
    ]
    if share > quarantine_max_share:
        failures.append(f"quarantined share {share:.2%} is above the maximum {quarantine_max_share:.2%}")
    if mismatches:
        failures.append(f"GE and quarantine counts disagree for {', '.join(mismatches)}")
    return GateResult(
        run_name=run_name,
        interval_end=ctx.interval_end.isoformat(),
        rows_in=rows_in,
        exact_duplicates_dropped=rows_in - rows,
        rows_validated=rows,
        quarantined=quarantined,
        quarantined_share=round(share, 6),
        quarantine_max_share=quarantine_max_share,
        rules=rules,
        table_checks=table_checks,
        failures=failures,
        success=not failures,
        data_docs=docs,
    )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_gate_arrow(
    batch: pa.Table,
    ctx: RuleContext,
    *,
    quarantine_max_share: float,
    rows_expected: tuple[int, int] | None = None,
    docs_root: Path | None = None,
    run_name: str = "gate",
) -> GateOutcome:
    """`run_gate` on one bronze batch as Arrow (the embedded engine), the rules' DuckDB predicates,
    GE on the pandas frame of the same rows. `valid` and `quarantine` are Arrow tables (quarantine's
    `failed_rules` joined by commas, in rule order, as the Spark gate writes it)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("batch", batch)
        names = ", ".join(_q(c) for c in TRANSACTIONS.names)
        # exact duplicate rows (same values in every contract column): one copy kept, as Spark's
        # dropDuplicates; of copies from several files, the first ingested
        con.execute(
            f"CREATE TABLE deduped AS SELECT * FROM batch QUALIFY row_number() OVER "
            f"(PARTITION BY {names} ORDER BY ingest_date, load_id, source_file) = 1"
        )
        cases = ", ".join(f"CASE WHEN ({r.sql(ctx)}) THEN '{r.name}' END" for r in ROW_RULES)
        con.execute(
            f"CREATE TABLE flagged AS SELECT *, list_filter([{cases}], lambda x: x IS NOT NULL) AS _f FROM deduped"
        )
        sums = ", ".join(f"count(*) FILTER (WHERE list_contains(_f, '{r.name}')) AS {_q(r.name)}" for r in ROW_RULES)
        counts_row = con.execute(f"SELECT count(*) AS _rows, {sums} FROM flagged").fetchall()[0]
        rows = int(counts_row[0])
        counts = {r.name: int(counts_row[i + 1] or 0) for i, r in enumerate(ROW_RULES)}
        others = ", ".join(_q(c) for c in batch.column_names)
        quarantine = con.sql(
            f"SELECT {others}, array_to_string(_f, ',') AS failed_rules FROM flagged WHERE len(_f) > 0"
        ).to_arrow_table()
        valid = con.sql(f"SELECT {others} FROM flagged WHERE len(_f) = 0").to_arrow_table()
        frame = con.sql(f"SELECT {names} FROM deduped").to_arrow_table().to_pandas()
    finally:
        con.close()
    ge_results, docs = _validate_with_ge(
        frame, [r.expectation(ctx) for r in ROW_RULES] + _table_expectations(rows_expected), docs_root, run_name
    )
    result = _result(
        batch.num_rows, rows, quarantine.num_rows, counts, ge_results, docs, ctx, quarantine_max_share, run_name
    )
    return GateOutcome(valid=valid, quarantine=quarantine, result=result)


def save_result(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(path)
    return path
