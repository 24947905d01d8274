"""Weekly monitoring: prediction log -> late labels -> drift -> performance -> retrain decision.

For the week ending the day before the run's data interval end:

- `load_prediction_log`: the serving spool MERGEd into `monitoring.prediction_log`.
- `derive_labels` (Spark): churn outcomes of predictions whose horizon has elapsed ->
  `monitoring.labels` (MERGE on prediction_id).
- `detect_drift` runs in the drift environment (`@task.external_python`, alibi-detect; imports
  inside, JSON in and out), beside `derive_labels` (it needs the served features, not the labels):
  the champion's training set vs the features served in the week and the newest batch snapshot
  -> `monitoring.drift_reports` + an HTML report (path in the result).
- `performance`: realised AUC / precision / recall / calibration per version, variant and slice
  with bootstrap intervals -> `monitoring.performance`.
- `decide`: the governed policy (`monitoring.policy`) over the windows so far; the decision, retrain
  or not, with its numbers, is MERGEd into `monitoring.retrain_decisions` on its decision_id.
  This DAG only WRITES the decision: `retrain_on_drift` hands a retrain to the training DAG.

Every step replaces its own window (rerun / backfill safe). Params: drift thresholds and policy
overrides (JSON object, keys of `RetrainPolicy`); defaults from the ML_PLATFORM_DRIFT_* and
ML_PLATFORM_RETRAIN_POLICY settings. Alerts (log, and the webhook when set) on drift, on a
performance-triggered decision and on any task failure. Links: `detect_drift` -> the week's drift
report.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from ml_platform.config import get_settings
from ml_platform.monitoring.policy import RetrainPolicy
from platform_dags import fail_on_platform_error, task_defaults
from platform_links import ResultLink, link_results, report
from platform_operators import LakeSparkSubmitOperator

_settings = get_settings()  # environment only, no I/O
DRIFT_PYTHON = str(_settings.drift_python)
LABELS_JOB = str(Path(__file__).resolve().parents[1] / "spark_jobs" / "monitoring_labels.py")


@dag(
    dag_id="monitoring",
    schedule="@weekly",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    end_date=pendulum.instance(_settings.monitoring_end_date_utc) if _settings.monitoring_end_date else None,
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(minutes=1)),
    tags=["monitoring", "drift"],
    doc_md=__doc__,
    params={
        "q_value": Param(
            _settings.drift_q_value,
            type="number",
            exclusiveMinimum=0,
            maximum=1,
            description="False discovery rate of the per-feature drift tests.",
        ),
        "effect_threshold": Param(
            _settings.drift_effect_threshold,
            type="number",
            minimum=0,
            description="The floor of every feature's PSI threshold: a significant feature drifts only at or above "
            "its calibrated threshold and this.",
        ),
        "lag_weeks": Param(
            _settings.drift_lag_weeks,
            type="integer",
            minimum=0,
            maximum=26,
            description="Compare the week with the feature snapshot this many weeks earlier, on thresholds "
            "calibrated for the champion; 0: with the champion's training set, at the effect threshold.",
        ),
        "policy": Param(
            {},
            **RetrainPolicy.json_schema(),
            description='Retrain policy overrides (keys of RetrainPolicy), e.g. {"cooldown_days": 7}; '
            "{}: the ML_PLATFORM_RETRAIN_POLICY setting.",
        ),
    },
)
def monitoring() -> None:
    @task
    def load_prediction_log() -> dict:
        from ml_platform.config import get_settings
        from ml_platform.serving.spool import load_spool

        return load_spool(get_settings().home / "serving" / "spool")

    labels = LakeSparkSubmitOperator(
        task_id="derive_labels",
        application=LABELS_JOB,
        conn_id="spark_default",
        application_args=["--horizon-days", str(_settings.label_horizon_days)],
        name="monitoring_labels",
        doc_md="One Spark job: labels for every logged prediction whose horizon has elapsed (MERGE, idempotent).",
    )

    @task
    def drift_spec(params=None, data_interval_end=None) -> dict | None:
        """The champion, its training set and the table paths, as JSON for the drift environment."""
        from ml_platform.monitoring.weekly import drift_spec as spec

        return spec(
            (data_interval_end - timedelta(days=1)).date(),
            lag_weeks=params["lag_weeks"],
            q_value=params["q_value"],
            effect_threshold=params["effect_threshold"],
        )

    @task.external_python(python=DRIFT_PYTHON, expect_airflow=False)
    def detect_drift(spec: dict | None) -> dict | None:
        if spec is None:
            print("no champion yet: nothing to compare")
            return None
        from ml_platform.monitoring.drift_run import run_window

        out = run_window(spec)
        print(f"drift report: {out['report']}")
        return out

    @task
    def performance(data_interval_end=None) -> dict:
        from ml_platform.monitoring.weekly import performance_window

        return performance_window((data_interval_end - timedelta(days=1)).date())

    @task
    def decide(spec: dict | None, drift: dict | None, perf: dict, params=None, data_interval_end=None) -> dict:
        from ml_platform.monitoring.alerts import send_alert
        from ml_platform.monitoring.policy import decide_retrain
        from ml_platform.monitoring.weekly import history, log_drift_report, record_decision, retrain_policy

        with fail_on_platform_error("policy"):
            policy = retrain_policy(params["policy"])
        end = (data_interval_end - timedelta(days=1)).date()
        if drift:
            log_drift_report(spec, drift)
            for source, res in drift["sources"].items():
                if res["drifted"]:
                    send_alert(
                        "drift",
                        f"{source} features drifted in the week ending {end}: {', '.join(res['drifted'])}",
                        {"report": drift["report"], **res},
                    )
        decision = decide_retrain(history(end), policy)
        new = record_decision(decision, end)
        drop = decision.numbers.get("auc_drop")
        if drop is not None and drop > policy.auc_drop:
            send_alert(
                "performance",
                f"realised AUC {drop:.3f} below the offline baseline in the week ending {end}",
                decision.numbers,
            )
        if decision.retrain:
            send_alert(f"retrain_{decision.trigger}", decision.reason, {"decision_id": decision.decision_id})
        print(f"{'RETRAIN' if decision.retrain else 'no retrain'} ({decision.decision_id}): {decision.reason}")
        return decision.to_dict() | {"new": new, "performance": perf}

    spec = drift_spec()
    d = link_results(detect_drift(spec), ResultLink("Drift report", report("report")))
    p = performance()
    # drift needs the served features, not the labels: it runs beside the labels' Spark job
    log = load_prediction_log()
    log >> labels >> p
    log >> spec
    decide(spec, d, p)


monitoring()
