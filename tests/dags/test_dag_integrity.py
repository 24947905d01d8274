"""Every DAG file imports fast and clean, with tags, retries and nothing heavy at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.dags
DAGS = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))
HEAVY = (
    "pyspark",
    "pandas",
    "numpy",
    "mlflow",
    "torch",
    "sklearn",
    "xgboost",
    "great_expectations",
    "delta",
    "deltalake",
    "shap",
    "bentoml",
)


@pytest.fixture(scope="module")
def bag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS[0].parent))


def test_no_import_errors(bag):
    assert bag.import_errors == {}
    assert {p.stem for p in DAGS} == set(bag.dag_ids)  # dag_id == file stem


@pytest.mark.parametrize("path", DAGS, ids=lambda p: p.stem)
def test_imports_fast_without_heavy_modules(path):
    """Import in a fresh interpreter (after airflow.sdk is loaded) and time the DAG file alone."""
    code = (
        "import sys, time, json, importlib.util\n"
        "import airflow.sdk, airflow.providers.apache.spark.operators.spark_submit\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); t = time.perf_counter(); spec.loader.exec_module(m)\n"
        "print(json.dumps({'s': time.perf_counter() - t, 'new': sorted(set(sys.modules) - before)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = sorted({m.split(".")[0] for m in info["new"]} & set(HEAVY))
    assert heavy == [], f"{path.name} imports {heavy} at parse time"
    assert info["s"] < 1.0, f"{path.name} took {info['s']:.2f}s to import"


def test_tags_retries_docs(bag):
    for dag_id, dag in bag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 80, dag_id
        for t in dag.tasks:
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"


def test_every_task_is_bounded_and_every_sensor_gives_up_before_its_task_times_out(bag):
    """A hung call fails its try (which retries) instead of holding a worker slot forever."""
    from datetime import timedelta

    from ml_platform.config import get_settings

    bound = timedelta(minutes=get_settings().task_timeout_minutes)
    for dag_id, dag in bag.dags.items():
        for t in dag.tasks:
            assert t.execution_timeout == bound, f"{dag_id}.{t.task_id}: execution_timeout {t.execution_timeout}"
            if getattr(t, "timeout", None) is not None and hasattr(t, "poke_interval"):  # a sensor
                assert timedelta(seconds=t.timeout) < bound, f"{dag_id}.{t.task_id}: sensor outlives its task"


def test_writer_dag_runs_one_at_a_time_and_catches_up(bag):
    dag = bag.get_dag("features_build")
    assert dag.max_active_runs == 1 and dag.catchup
    assert [t.task_id for t in dag.topological_sort()] == [
        "find_landed_files",
        "ingest_validate_features",
        "publish_features",
    ]
    assert set(dag.params) == {"steps", "quarantine_max_share"}  # shown in the UI trigger form
    outlets = dag.get_task("publish_features").outlets
    assert [a.name for a in outlets] == ["features.customer_features"]


def test_training_runs_weekly_or_on_a_retrain_request_never_on_features(bag):
    dag = bag.get_dag("training")
    tt = dag.timetable
    assert type(tt).__name__ == "AssetOrTimeSchedule"
    assert tt.asset_condition.name == "training.retrain_requested"  # the daily features asset never triggers it
    assert type(tt.timetable).__name__ == "CronTriggerTimetable"
    assert (tt.timetable.expression, str(tt.timetable.timezone)) == ("0 4 * * 1", "UTC")  # Monday 04:00 UTC
    assert {
        "cutoffs",
        "last_k",
        "horizon_days",
        "n_trials",
        "n_workers",
        "families",
        "timeout",
        "seed",
        "distributed_workers",
    } == set(dag.params)
    assert [t.task_id for t in dag.topological_sort()][:2] == ["plan", "build_training_set"]
    assert [a.name for a in dag.get_task("register").outlets] == ["registry.challenger"]


def test_every_param_is_described_valid_by_default_and_may_be_empty_only_when_typed_so(bag):
    """The UI's trigger form marks an empty string param as a required field left blank: a param whose
    default is empty must allow null. Every default passes its own schema, so the form starts valid."""
    import jsonschema

    for dag_id, dag in bag.dags.items():
        for name, param in dag.params.items():
            schema = param.schema
            assert param.description, f"{dag_id}.{name} has no description"
            jsonschema.validate(param.value, schema)
            if param.value in (None, ""):
                assert "null" in schema.get("type", []), f"{dag_id}.{name}: empty default but type {schema.get('type')}"


def test_a_param_of_the_wrong_type_is_refused_before_any_task_runs_naming_the_param(bag):
    """What a trigger (REST API, CLI or form) carries is validated against each param's schema
    when the run is created: a value of the wrong type is a `ParamValidationError` naming it, never
    a task that fails half-way. One wrong value per typed param, of every DAG."""
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    wrong = {"number": "12abc", "integer": 1.5, "string": {"a": 1}, "array": "a,b", "object": [1], "boolean": "yes"}
    checked = 0
    for dag in bag.dags.values():
        for name, param in dag.params.items():
            types = param.schema.get("type")
            types = [types] if isinstance(types, str) else list(types or [])
            bad = next((wrong[t] for t in types if t in wrong and t != "null"), None)
            if bad is None or any(_accepts(t, bad) for t in types):
                continue
            params = copy.deepcopy(dag.params)
            with pytest.raises(ParamValidationError, match=name):
                params[name] = bad
                params.validate()
            checked += 1
    assert checked >= 15, checked


def _accepts(json_type: str, value: object) -> bool:
    import jsonschema

    return jsonschema.Draft7Validator({"type": json_type}).is_valid(value)


def test_tasks_link_to_what_they_produce(bag):
    expected = {
        ("features_build", "ingest_validate_features"): {"Gate result", "GE data docs"},
        ("training", "register"): {"MLflow run", "Model version"},
        ("training", "evaluation_report"): {"Evaluation report"},
        ("monitoring", "detect_drift"): {"Drift report"},
        ("serving_deploy", "apply_decision"): {"Champion version"},
        ("serving_deploy", "confirm_serving"): {"Service API docs"},
    }
    for (dag_id, task_id), names in expected.items():
        task = bag.get_dag(dag_id).get_task(task_id)
        assert {link.name for link in task.operator_extra_links} == names, (dag_id, task_id)
    keys = [link.xcom_key for task in bag.get_dag("training").tasks for link in task.operator_extra_links]
    assert len(keys) == len(set(keys))  # one XCom per link


def test_promotion_params_are_the_policy_defaults(bag):
    """The serving_deploy form offers the promotion Policy's own fields and defaults (one place for the
    numbers), with the latency budget from settings; the form's values parse back into a Policy."""
    from ml_platform.config import get_settings
    from ml_platform.registry.promotion import Policy

    params = bag.get_dag("serving_deploy").params
    policy = Policy()
    for name in Policy.__dataclass_fields__:
        expected = get_settings().promotion_latency_p99_ms if name == "latency_p99_ms" else getattr(policy, name)
        assert params[name] == expected, name
    assert Policy.from_mapping({k: params[k] for k in Policy.param_specs()}).floor_auc == policy.floor_auc


def test_a_service_down_fails_the_try_for_a_retry_while_a_bad_param_fails_at_once():
    from airflow.sdk.exceptions import AirflowFailException

    from ml_platform.errors import MlPlatformError
    from ml_platform.lake.endpoints import Unreachable
    from platform_dags import fail_on_platform_error

    with pytest.raises(AirflowFailException, match="param cutoffs: bad"):
        with fail_on_platform_error("cutoffs"):
            raise MlPlatformError("bad")
    with pytest.raises(Unreachable):  # not AirflowFailException: the task's retries apply
        with fail_on_platform_error():
            raise Unreachable("the MLflow tracking server http://127.0.0.1:1 is not reachable")
