"""Training: point-in-time training set -> Optuna HPO fanned out over mapped workers on one shared
study -> final fit, test metrics -> MLflow model `@challenger` -> the evaluation report (plots,
SHAP, fairness), written after registration so that serving_deploy's gate need not wait for it.

Scheduled weekly (Monday 04:00 UTC) OR by the `training.retrain_requested` asset (the monitoring
loop); the `features` asset never triggers training. Asset-triggered runs have no logical date:
everything is keyed by the run id (training_set_id, study name) and the event's extra. Params in
the trigger form: cutoffs (empty: the last `last_k` snapshot dates with a fully observed label
window), horizon_days, n_trials (total, split across workers), n_workers, families, timeout,
seed, distributed_workers (refit an xgboost/mlp winner on Spark; 0 = in the task). Tasks pass ids through XCom, never data. Emits `registry.challenger` with the model name
and version. The model version is tagged with the retrain request's decision_id (when one caused
the run) and `data_as_of`, the newest feature snapshot at planning time (the retrain policy's
clock for cool-down and budget). The training set's job builds the labels and the join on the engine
`ML_PLATFORM_ENGINE_TRAINING_SETS` picks: spark-submit, or on one machine DuckDB in a plain Python
process (no JVM). Writes `ml.training_sets` (partition per run), MLflow runs (the
study and its trials) and a model version. Links: `register` -> MLflow run and model version,
`evaluation_report` -> the HTML report. A bad param fails `plan` with a message naming it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from ml_platform.assets import CHALLENGER, RETRAIN_REQUESTED
from ml_platform.config import get_settings
from ml_platform.training import FAMILIES as MODEL_FAMILIES
from platform_dags import event_extra, fail_on_platform_error, task_defaults
from platform_links import ResultLink, link_results, mlflow_run, model_version, report
from platform_operators import LakeSparkSubmitOperator

_settings = get_settings()  # environment variables only, no I/O
SPARK_JOB = str(Path(__file__).resolve().parents[1] / "spark_jobs" / "training_set.py")
FAMILIES = ",".join(MODEL_FAMILIES)
_FAMILY = "(" + "|".join(MODEL_FAMILIES) + ")"
FAMILIES_PATTERN = rf"^ *{_FAMILY} *(, *{_FAMILY} *)*$"  # the form refuses an unknown family
CUTOFFS_PATTERN = r"^( *\d{4}-\d{2}-\d{2} *(, *\d{4}-\d{2}-\d{2} *)*)?$"


@dag(
    dag_id="training",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 4 * * 1", timezone="UTC"), assets=RETRAIN_REQUESTED),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(minutes=1)),
    tags=["training", "mlflow", "optuna"],
    doc_md=__doc__,
    params={
        "cutoffs": Param(
            None,
            type=["null", "string"],
            pattern=CUTOFFS_PATTERN,
            title="Cutoffs",
            description="Comma-separated cutoff dates (YYYY-MM-DD,...); empty: the last `last_k` "
            "snapshot dates whose label window is fully observed.",
        ),
        "last_k": Param(
            4, type="integer", minimum=3, maximum=52, description="Cutoffs to use when none are given (>= 3)."
        ),
        "horizon_days": Param(
            _settings.label_horizon_days,
            type="integer",
            minimum=1,
            maximum=730,
            description="Churn label window in days: no purchase within it = churned.",
        ),
        "n_trials": Param(
            _settings.training_trials,
            type="integer",
            minimum=1,
            maximum=10_000,
            description="Optuna trials in total (split across workers).",
        ),
        "n_workers": Param(2, type="integer", minimum=1, maximum=16, description="Mapped HPO tasks on one study."),
        "families": Param(
            FAMILIES,
            type="string",
            pattern=FAMILIES_PATTERN,
            description="Model families to search, comma-separated, from: " + FAMILIES + ".",
        ),
        "timeout": Param(
            None, type=["null", "number"], exclusiveMinimum=0, description="Seconds per HPO worker (empty: no limit)."
        ),
        "seed": Param(0, type="integer", minimum=0, description="Seed (one worker: reproducible)."),
        "distributed_workers": Param(
            0,
            type="integer",
            minimum=0,
            maximum=64,
            description="0: final fit in the task; N: refit an xgboost/mlp winner over N Spark "
            "tasks (xgboost.spark) / torch processes (TorchDistributor).",
        ),
    },
)
def training() -> None:
    @task
    def plan(params=None, run_id=None, triggering_asset_events=None) -> dict:
        """Resolve cutoffs, name the training set and study after the run, open the study's MLflow run."""
        import hashlib
        from datetime import date

        from ml_platform.lake.paths import table_path
        from ml_platform.lake.reader import partition_values
        from ml_platform.training.families import check_families
        from ml_platform.training.hpo import split_trials
        from ml_platform.training.labels import check_cutoffs, parse_cutoffs
        from ml_platform.training.tracking import start_study_run
        from ml_platform.training.train import usable_cutoffs

        # bad params or too little data: fail now with the reason, a retry would not help
        with fail_on_platform_error("families"):
            families = check_families(params["families"].split(","))
        with fail_on_platform_error("cutoffs"):
            given = parse_cutoffs(params["cutoffs"] or "")
            if given:  # a window that is not observed yet fails here, not in the Spark job
                days = partition_values(table_path("silver.transactions"), "txn_date")
                given = check_cutoffs(given, params["horizon_days"], date.fromisoformat(days[-1]) if days else None)
        with fail_on_platform_error():
            cutoffs = [d.isoformat() for d in given or usable_cutoffs(params["horizon_days"], params["last_k"])]
        snaps = partition_values(table_path("features.customer_features"), "snapshot_date")
        tsid = "train-" + hashlib.sha256(run_id.encode()).hexdigest()[:12]
        decision = event_extra(triggering_asset_events, "decision_id")
        study = f"churn-{tsid}"
        parent = start_study_run(study, tsid, {**params, "airflow_run_id": run_id, "decision_id": decision})
        return {
            "training_set_id": tsid,
            "cutoffs": ",".join(cutoffs),
            "study": study,
            "parent_run_id": parent,
            "families": families,
            "decision_id": decision,
            "data_as_of": snaps[-1] if snaps else None,
            "shards": split_trials(params["n_trials"], params["n_workers"]),
        }

    p = plan()

    build = LakeSparkSubmitOperator(
        task_id="build_training_set",
        application=SPARK_JOB,
        application_args=[
            "--cutoffs",
            "{{ ti.xcom_pull(task_ids='plan')['cutoffs'] }}",
            "--horizon-days",
            "{{ params.horizon_days }}",
            "--id",
            "{{ ti.xcom_pull(task_ids='plan')['training_set_id'] }}",
        ],
        conn_id="spark_default",
        engine="ml_platform.training.labels:churn_training_set_engine",
        name="training_set_{{ run_id | replace(':', '_') | replace('+', '_') }}",
        doc_md="One job (Spark, or the embedded engine in plain Python): churn labels for the cutoffs + "
        "point-in-time join -> ml.training_sets (with lineage and the engine).",
    )

    @task
    def shards(plan: dict) -> list[dict]:
        return [{"worker": i, "trials": n} for i, n in enumerate(plan["shards"])]

    @task(max_active_tis_per_dagrun=16)
    def hpo(shard: dict, plan: dict, params=None) -> int:
        """Run this worker's share of trials on the shared study (journal file or PostgreSQL storage)."""
        from ml_platform.features.training_frame import load_training_frame
        from ml_platform.training.hpo import Study
        from ml_platform.training.train import hpo_worker

        df, names, _ = load_training_frame(plan["training_set_id"])
        study = Study(
            n_trials=shard["trials"],
            families=plan["families"],
            seed=params["seed"] + shard["worker"],
            timeout=params["timeout"],
        )
        return hpo_worker(df, names, study, study_name=plan["study"], parent_run_id=plan["parent_run_id"])

    @task(outlets=[CHALLENGER])
    def register(plan: dict, trials: list[int], params=None, outlet_events=None) -> dict:
        """Refit the best configuration, test metrics, register as @challenger, emit the asset
        (serving_deploy's gate starts now; the report follows in `evaluation_report`)."""
        from ml_platform.config import get_settings
        from ml_platform.features.training_frame import load_training_frame
        from ml_platform.training.finalize import finalize_and_register
        from ml_platform.training.hpo import Study
        from ml_platform.training.tracking import mlflow_setup

        df, names, lineage = load_training_frame(plan["training_set_id"])
        res = finalize_and_register(
            df,
            names,
            Study(
                sum(plan["shards"]), plan["families"], params["seed"], distributed_workers=params["distributed_workers"]
            ),
            study_name=plan["study"],
            parent_run_id=plan["parent_run_id"],
            training_set_id=plan["training_set_id"],
            lineage=lineage,
            extra_tags={"decision_id": plan["decision_id"], "data_as_of": plan.get("data_as_of")},
            report=False,
        )
        extra = {
            "model_name": res.model_name,
            "version": res.version,
            "training_set_id": plan["training_set_id"],
            "decision_id": plan["decision_id"],
        }
        outlet_events[CHALLENGER].extra = extra
        return {
            **extra,
            "test_roc_auc": res.test_metrics["roc_auc"],
            "trials": sum(trials),
            "run_id": res.run_id,
            "experiment_id": mlflow_setup(get_settings()),
        }

    @task
    def evaluation_report(registered: dict, params=None) -> str:
        """The HTML evaluation report (ROC, calibration, SHAP, fairness) of the registered version,
        beside the gate rather than before it; its path (also in MLflow under evaluation/)."""
        from ml_platform.training.finalize import evaluation_report as report

        path = report(registered["version"], seed=params["seed"])
        print(f"evaluation report: {path}")
        return path

    s = shards(p)
    p >> build >> s
    registered = link_results(
        register(p, hpo.partial(plan=p).expand(shard=s)),
        ResultLink("MLflow run", mlflow_run()),
        ResultLink("Model version", model_version()),
    )
    link_results(evaluation_report(registered), ResultLink("Evaluation report", report()))


training()
