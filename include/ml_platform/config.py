"""Platform settings: one pydantic-settings object read from `ML_PLATFORM_*` variables.

No I/O happens at import or construction; paths are derived, folders are created by the code
that writes into them. Unknown `ML_PLATFORM_*` variables are an error (a typo must not silently
fall back to a default).
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timezone
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml_platform.locations import normalize

#: The POM naming the lake's Spark jars (Delta, ABFS): package data (`ml-platform setup`), read
#: through importlib.resources so that it is found in a zip too (the code a Spark job ships).
SPARK_JARS_POM = ("ml_platform", "lake/spark-jars.pom.xml")


def spark_jars_pom() -> bytes:
    """The content of the package's jars POM."""
    from importlib.resources import files

    package, name = SPARK_JARS_POM
    return files(package).joinpath(name).read_bytes()


def cache_dir() -> Path:
    """The per-user cache that `make setup` and `ml-platform setup` fill: `ML_PLATFORM_CACHE`, else
    `$XDG_CACHE_HOME/ml-platform`, else `~/.cache/ml-platform` (the folder scripts/bootstrap.sh uses)."""
    if explicit := os.environ.get("ML_PLATFORM_CACHE"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-platform"


def default_jars_dir() -> Path:
    """Where `ml-platform setup` puts the jars: one folder per version of the package's POM."""
    import hashlib

    return cache_dir() / "jars" / f"delta-{hashlib.sha256(spark_jars_pom()).hexdigest()[:16]}"


#: Variables with the prefix that belong to the set-up and test scripts, not to this object.
SCRIPT_VARIABLES = frozenset(
    {
        "ML_PLATFORM_CACHE",
        "ML_PLATFORM_PG_PORT",
        "ML_PLATFORM_REDIS_PORT",
        "ML_PLATFORM_SERVICES_DIR",
        "ML_PLATFORM_TEST_PG_URL",
        "ML_PLATFORM_TEST_REDIS_URL",
        "ML_PLATFORM_TEST_SHARED",
        "ML_PLATFORM_UI_SCREENSHOTS",
        "ML_PLATFORM_AZURITE_PORT",
        "ML_PLATFORM_AZURITE_DIR",
        "ML_PLATFORM_MLFLOW_BACKEND_STORE",
        "ML_PLATFORM_MLFLOW_ARTIFACTS",
        "ML_PLATFORM_SPARK_MASTER_PORT",
        "ML_PLATFORM_SPARK_WORKERS",
        "ML_PLATFORM_SPARK_WORKER_MEMORY",
        "ML_PLATFORM_CELERY_WORKERS",
    }
)


class Settings(BaseSettings):
    """Every setting of the platform; the README's settings table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix="ML_PLATFORM_", extra="forbid")

    home: Path = Field(default=Path(".platform"), description="Platform home: lake, landing, Airflow, MLflow, logs.")
    lake_uri: str = Field(
        default="",
        description="Root of the Delta lake: a local folder (default <home>/lake) or "
        "abfss://<container>@<account>.dfs.core.windows.net/<path> (Azure Storage).",
    )
    landing_uri: str = Field(
        default="",
        description="Landing zone of incoming files: a local folder (default "
        "<home>/landing) or an abfss:// URI (a Blob container).",
    )
    azure_storage_account_key: SecretStr | None = Field(default=None, description="Azure Storage account key (secret).")
    azure_storage_sas_token: SecretStr | None = Field(
        default=None, description="Azure Storage SAS token (secret), used when no key is set."
    )
    azure_client_id: str = Field(
        default="", description="Service principal (with the secret and tenant) or user-assigned managed identity."
    )
    azure_client_secret: SecretStr | None = Field(default=None, description="Service principal secret (secret).")
    azure_tenant_id: str = Field(default="", description="Service principal tenant.")
    azure_conn_id: str = Field(
        default="",
        description="Airflow connection (type wasb or adls) whose credentials DAG "
        "tasks use for Azure Storage instead of the ML_PLATFORM_AZURE_* secrets; the landing "
        "sensor's connection (default wasb_default).",
    )
    task_retry_delay_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Delay before a failed task's retry, for every DAG (default: each DAG's own, 30 s to 5 min).",
    )
    task_timeout_minutes: float = Field(
        default=180.0,
        gt=0,
        description="execution_timeout of every DAG task (a hung call fails its try, which retries); "
        "sensors keep their own shorter timeouts.",
    )
    landing_wait_seconds: int = Field(
        default=3600,
        ge=0,
        description="How long features_build waits for the last "
        "day of its interval to land in a Blob landing zone before it skips.",
    )
    azure_emulator_endpoint: str = Field(
        default="",
        description="Blob endpoint of an emulator (Azurite), e.g. "
        "http://127.0.0.1:20000/devstoreaccount1; emulator-only settings apply only then.",
    )
    spark_jars_dir: Path | None = Field(
        default=None,
        description="Folder of the Delta jars fetched at set-up (default: the per-user cache, "
        "~/.cache/ml-platform/jars/delta-<POM hash>, config.default_jars_dir).",
    )
    spark_master: str = Field(default="local[*]", description="Spark master for sessions built in-process.")
    spark_remote: str = Field(
        default="",
        description="Spark Connect URL (sc://host:port); when set, every job is a "
        "client of that long-lived server instead of starting its own JVM.",
    )
    spark_connect_port: int = Field(
        default=15002, description="Port of the Spark Connect server scripts/spark_connect.sh starts (127.0.0.1)."
    )
    spark_shuffle_partitions: int = Field(
        default=8, ge=1, description="Shuffle partitions of a Spark session (spark.sql.shuffle.partitions; tests: 2)."
    )
    spark_driver_memory: str = Field(
        default="2g", description="Driver memory of a Spark session (spark.driver.memory)."
    )
    spark_cores_max: int = Field(
        default=0,
        ge=0,
        description="Cores one Spark application may hold on a cluster master (spark.cores.max); 0: "
        "Spark's default, all. A long-lived session (the CLI, the demo's loop) otherwise starves every "
        "other job of a small cluster.",
    )
    spark_executor_memory: str = Field(
        default="1g",
        description="Memory of each executor on a cluster master (a worker offers ML_PLATFORM_SPARK_WORKER_MEMORY).",
    )
    engine_features: Literal["auto", "embedded", "spark"] = Field(
        default="auto",
        description="Engine of the feature snapshot job: embedded (DuckDB in the process, no JVM), spark, or "
        "auto (embedded below ML_PLATFORM_EMBEDDED_MAX_BYTES of input files without a Spark cluster).",
    )
    engine_data_plane: Literal["auto", "embedded", "spark"] = Field(
        default="auto",
        description="Engine of ingest, the Great Expectations gate and the silver MERGEs: embedded (DuckDB and "
        "delta-rs in the process, GE on pandas, no JVM), spark, or auto (as ML_PLATFORM_ENGINE_FEATURES, on "
        "silver.transactions).",
    )
    engine_training_sets: Literal["auto", "embedded", "spark"] = Field(
        default="auto", description="Engine of point-in-time training sets: as ML_PLATFORM_ENGINE_FEATURES."
    )
    engine_scoring: Literal["auto", "embedded", "spark"] = Field(
        default="auto",
        description="Engine of batch scoring (a snapshot's features -> the pyfunc -> gold.churn_scores): as "
        "ML_PLATFORM_ENGINE_FEATURES.",
    )
    embedded_max_bytes: int = Field(
        default=2**30,
        ge=0,
        description="auto picks the embedded engine while a job's input Delta files (Parquet, compressed) stay "
        "below this size (benchmarks/README.md: 10 M transactions are 248 MiB, peak RSS 2.9 GiB).",
    )
    dag_start_date: date = Field(default=date(2025, 1, 1), description="First data interval of the catch-up DAGs.")
    dag_end_date: date | None = Field(
        default=None, description="Last data interval of the catch-up DAGs (none: open-ended)."
    )
    monitoring_end_date: date | None = Field(
        default=None,
        description="Last logical date of the monitoring DAG's weekly schedule (none: open-ended). The demo sets "
        "the end of its simulated weeks, so unpausing the DAG starts no run for the real current week.",
    )
    snapshot_cadence: Literal["daily", "weekly"] = Field(
        default="daily", description="How often a feature snapshot is taken."
    )
    quarantine_max_share: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Gate fails above this quarantined share."
    )
    row_count_min_ratio: float = Field(
        default=0.2, gt=0.0, description="Gate fails if today's rows < ratio x previous day."
    )
    row_count_max_ratio: float = Field(
        default=5.0, gt=0.0, description="Gate fails if today's rows > ratio x previous day."
    )
    amount_max: float = Field(default=100_000.0, gt=0.0, description="Largest plausible transaction amount.")
    airflow_port: int = Field(default=28080, description="Airflow api-server port (127.0.0.1); +1, +2 for log servers.")
    mlflow_port: int = Field(default=25000, description="MLflow server port (127.0.0.1).")
    api_token: str = Field(
        default="", description="Bearer token required by POST /predict when set (health endpoints stay open)."
    )
    serving_port: int = Field(default=23000, description="Port of `ml-platform serve` (127.0.0.1 by default).")
    serving_workers: int = Field(default=1, ge=1, description="BentoML worker processes of the churn service.")
    serving_poll_seconds: float = Field(
        default=10.0, gt=0, description="How often each worker checks the MLflow aliases."
    )
    serving_challenger_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="A/B: share of customers (sticky by id hash) answered by @challenger."
    )
    serving_shadow: bool = Field(
        default=False, description="Shadow: score @challenger too, log it, return the champion."
    )
    serving_max_rows: int = Field(default=100, ge=1, description="Most customers or rows in one /predict request.")
    serving_max_explain_rows: int = Field(
        default=10, ge=1, description="Most customers or rows in one /predict?explain=true request (SHAP per row)."
    )
    serving_max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest accepted request body.")
    serving_pinned_version: str = Field(
        default="", description="Serve this model version instead of @champion (smoke tests)."
    )
    promotion_latency_p99_ms: float = Field(
        default=100.0, gt=0, description="Gate: single-row predict p99 budget (ms)."
    )
    smoke_latency_p99_ms: float = Field(default=250.0, gt=0, description="Deployment smoke test: HTTP p99 budget (ms).")
    risk_bands: str = Field(default="0.75,0.50,0.25", description="High, Medium, Low thresholds (else Very Low).")
    explain_top_k: int = Field(default=5, ge=1, description="Contributions returned by /predict?explain=true.")
    online_store: Literal["sqlite", "redis"] = Field(default="sqlite", description="Online feature store backend.")
    online_sqlite_path: Path | None = Field(
        default=None, description="SQLite online store file; default <home>/online/features.db."
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Redis URL of the online store when online_store=redis."
    )
    redis_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Connect and read timeout of each Redis call: a hung Redis fails a lookup, never blocks it.",
    )
    event_hubs_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="Kafka endpoint of the transaction events: an Event Hubs namespace "
        "(<namespace>.servicebus.windows.net:9093, TLS) or a Kafka broker (scripts/kafka.sh starts one here).",
    )
    event_hubs_connection_string: SecretStr | None = Field(
        default=None,
        description="Event Hubs namespace connection string (secret): the SASL PLAIN password of the user "
        "$ConnectionString; default: the local broker's (scripts/kafka.sh).",
    )
    event_hubs_topic: str = Field(default="transactions", description="Event hub (Kafka topic) of transaction events.")
    event_hubs_scores_topic: str = Field(default="churn-scores", description="Event hub the stream's scores go to.")
    event_hubs_tls: Literal["auto", "on", "off"] = Field(
        default="auto", description="TLS to the endpoint (SASL_SSL); auto: on for *.servicebus.windows.net."
    )
    stream_trigger_seconds: float = Field(
        default=1.0, gt=0, description="Micro-batch trigger interval of the streaming job (seconds)."
    )
    stream_max_event_bytes: int = Field(
        default=8192, ge=256, description="A larger event is quarantined as oversized, never parsed."
    )
    stream_late_hours: float = Field(
        default=168.0,
        gt=0,
        description="Watermark: an event older than the newest event time seen minus this is quarantined as too late.",
    )
    vacuum_min_retention_hours: float = Field(
        default=168.0, ge=0.0, description="VACUUM never deletes files younger than this."
    )
    vacuum_mode: Literal["lite", "full"] = Field(
        default="lite", description="VACUUM LITE reads expired files from the Delta log; FULL lists the storage too."
    )
    as_of_horizon_days: int = Field(
        default=30, ge=0, description="as_of_known_time queries reach back this far; VACUUM keeps their files."
    )
    label_horizon_days: int = Field(default=90, ge=1, description="Churn label window of the training DAG (days).")
    training_trials: int = Field(
        default=20, ge=1, description="Optuna trials per training run unless the run's params say otherwise."
    )
    mlflow_tracking_uri: str = Field(
        default="", description="MLflow tracking + registry; default sqlite:///<home>/mlflow/mlflow.db."
    )
    mlflow_experiment: str = Field(default="churn", description="MLflow experiment of training runs.")
    model_name: str = Field(default="churn_model", description="Registered model name.")
    optuna_storage: str = Field(
        default="",
        description="Optuna storage: a PostgreSQL URL, or a journal file (default <home>/optuna/journal.log).",
    )
    alert_webhook_url: str = Field(default="", description="Alerts are POSTed here as JSON when set (always logged).")
    alert_timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of one alert POST.")
    alert_retries: int = Field(default=3, ge=1, description="Attempts per alert POST (backoff 0.5 s, 1 s, ...).")
    drift_q_value: float = Field(
        default=0.05, gt=0, le=1, description="Drift: false discovery rate of the per-feature tests."
    )
    drift_effect_threshold: float = Field(
        default=0.05,
        ge=0,
        description="Drift: the floor of every feature's PSI threshold (a significant feature drifts only at or above "
        "its threshold).",
    )
    drift_max_rows: int = Field(
        default=100_000, ge=100, description="Drift: larger samples are sampled down to this (stated in the report)."
    )
    drift_exclude: str = Field(
        default="", description="Drift: comma-separated features not watched (default: every model input is)."
    )
    drift_lag_weeks: int = Field(
        default=4,
        ge=0,
        le=26,
        description="Drift: a window is compared with the feature snapshot this many weeks before its end "
        "(0: with the champion's training set, at the effect threshold).",
    )
    drift_calibration_weeks: int = Field(
        default=6,
        ge=3,
        le=104,
        description="Drift: weekly snapshots up to the champion's data cutoff whose natural movement sets each "
        "feature's threshold.",
    )
    drift_margin: float = Field(
        default=1.5, ge=1.0, description="Drift: a feature drifts beyond this multiple of its natural movement."
    )
    drift_min_importance: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Drift: a drifted feature counts toward a retrain only with at least this share of the "
        "champion's SHAP importance (the score always counts).",
    )
    retrain_poll_seconds: float = Field(
        default=60.0,
        gt=0.0,
        description="How often retrain_on_drift's deferrable sensor looks for a new retrain decision (read at parse time).",
    )
    retrain_policy: str = Field(
        default="",
        description='Retrain policy overrides as JSON, e.g. {"cooldown_days": 7} (monitoring.policy.RetrainPolicy).',
    )
    drift_python: Path = Field(
        default_factory=lambda: cache_dir() / "drift" / "bin" / "python",
        description="Python of the drift environment (alibi-detect); a checkout's is .venv-drift (scripts/env.sh).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_variables(cls, data: object) -> object:
        known = {f"ML_PLATFORM_{name.upper()}" for name in cls.model_fields} | SCRIPT_VARIABLES
        unknown = sorted(k for k in os.environ if k.startswith("ML_PLATFORM_") and k not in known)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return data

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        self.home = self.home.expanduser().absolute()
        emulator = bool(self.azure_emulator_endpoint)
        self.lake_uri = normalize(self.lake_uri or self.home / "lake", emulator)
        self.landing_uri = normalize(self.landing_uri or self.home / "landing", emulator)
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"
        if not self.optuna_storage:
            self.optuna_storage = str(self.home / "optuna" / "journal.log")
        if self.online_sqlite_path is None:
            self.online_sqlite_path = self.home / "online" / "features.db"
        return self

    @property
    def dag_start_date_utc(self) -> datetime:
        return datetime.combine(self.dag_start_date, time(0), tzinfo=timezone.utc)

    @property
    def dag_end_date_utc(self) -> datetime | None:
        return datetime.combine(self.dag_end_date, time(0), tzinfo=timezone.utc) if self.dag_end_date else None

    @property
    def monitoring_end_date_utc(self) -> datetime | None:
        return (
            datetime.combine(self.monitoring_end_date, time(0), tzinfo=timezone.utc)
            if self.monitoring_end_date
            else None
        )

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call `get_settings.cache_clear()` after changing env).

    A bad or unknown `ML_PLATFORM_*` variable is a `ConfigError` naming it and what is wrong,
    which every entry point reports as an error message, not a traceback."""
    from pydantic import ValidationError

    from ml_platform.errors import ConfigError

    try:
        return Settings()
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = "ML_PLATFORM_" + "_".join(map(str, err["loc"])).upper() if err["loc"] else ""
            value = f"={err['input']!r}" if err["loc"] and isinstance(err["input"], str) else ""
            problems.append(f"{name}{value}: {err['msg']}" if name else err["msg"])
        raise ConfigError("bad settings: " + "; ".join(problems)) from None
