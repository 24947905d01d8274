"""Deployment: a new `@challenger` -> the promotion gate -> a smoke-tested Bento -> `@champion`.

Triggered by the `registry.challenger` asset (its extra names the version and the decision_id
of the retrain that produced it); a manual run with no `@challenger` is a clear skip. `evaluate`
re-scores the champion and the challenger on the challenger's held-out rows and decides with
the policy in the params. A rejected challenger
moves nothing; the rejection is recorded in `registry.alias_history`. A promoted one is first
built into a versioned Bento (`bentoml build`, our lock file), served from that Bento on a free
local port pinned to the candidate version and smoke-tested (readiness, a sample of customers,
p99 latency); only then are the aliases moved and the move recorded. `confirm_serving` waits
until the running `ml-platform serve` (127.0.0.1, ML_PLATFORM_SERVING_PORT) reports the new
champion, or logs that no service is running. Re-running a run re-applies the same decision,
which is a no-op. Writes `registry.alias_history`, MLflow aliases and a Bento. Links:
`apply_decision` -> the champion's model version, `confirm_serving` -> the service's API docs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from ml_platform.assets import CHALLENGER
from ml_platform.config import get_settings
from ml_platform.registry.promotion import Policy
from platform_dags import event_extra, fail_on_platform_error, task_defaults
from platform_links import ResultLink, link_results, model_version, service_docs

_settings = get_settings()  # environment variables only, no I/O


@dag(
    dag_id="serving_deploy",
    schedule=CHALLENGER,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(seconds=30)),
    tags=["serving", "registry", "bentoml"],
    doc_md=__doc__,
    params={
        **{
            name: Param(**spec)
            for name, spec in Policy.param_specs(latency_p99_ms=_settings.promotion_latency_p99_ms).items()
        },
        "smoke_p99_ms": Param(
            _settings.smoke_latency_p99_ms,
            type="number",
            exclusiveMinimum=0,
            description="Bento smoke test: HTTP p99 budget.",
        ),
    },
)
def serving_deploy() -> None:
    @task
    def evaluate(params=None, triggering_asset_events=None) -> dict:
        """Both models on the challenger's held-out rows -> a Decision (every number, the reason)."""
        import logging

        from airflow.sdk.exceptions import AirflowSkipException

        from ml_platform.registry.aliases import evaluate_and_decide
        from ml_platform.registry.evaluate import alias_version

        if alias_version("challenger") is None:  # e.g. a manual run after the last one was decided
            raise AirflowSkipException("no model has alias @challenger: nothing to evaluate or deploy")

        decision_id = event_extra(triggering_asset_events, "decision_id")
        announced = event_extra(triggering_asset_events, "version")
        policy = Policy.from_mapping({k: params[k] for k in Policy.param_specs()})
        with fail_on_platform_error():
            decision = evaluate_and_decide(policy)
        if announced and str(announced) != decision.challenger.version:
            logging.getLogger(__name__).warning(
                "event announced v%s; @challenger is now v%s (evaluated)", announced, decision.challenger.version
            )
        logging.getLogger(__name__).info("%s: %s", "PROMOTE" if decision.promote else "REJECT", decision.reason)
        return {"decision": decision.to_dict(), "decision_id": decision_id}

    @task.branch
    def gate(evaluated: dict) -> str:
        return "build_bento" if evaluated["decision"]["promote"] else "apply_decision"

    @task
    def build_bento(evaluated: dict, run_id=None) -> str:
        """A versioned Bento of the service code + lock file, labelled with the candidate version."""
        import hashlib

        from ml_platform.serving.bento import build_bento as build

        version = evaluated["decision"]["challenger"]["version"]
        return build(version, f"m{version}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}")

    @task
    def smoke_test(tag: str, evaluated: dict, params=None) -> dict:
        """Serve THAT Bento pinned to the candidate on a free port: readiness, customers, p99. Always stopped."""
        from ml_platform.serving.bento import sample_customers
        from ml_platform.serving.bento import smoke_test as smoke

        return smoke(
            tag,
            evaluated["decision"]["challenger"]["version"],
            sample_customers(20),
            p99_budget_ms=params["smoke_p99_ms"],
        )

    @task(trigger_rule="none_failed_min_one_success")
    def apply_decision(evaluated: dict, run_id=None) -> dict:
        """Move the aliases (promotion) or nothing (rejection); append to registry.alias_history."""
        from ml_platform.monitoring.alerts import send_alert
        from ml_platform.registry.aliases import apply_decision as apply
        from ml_platform.registry.promotion import Decision

        decision = Decision.from_dict(evaluated["decision"])
        record = apply(decision, dag_run_id=run_id, decision_id=evaluated["decision_id"] or "")
        if not decision.promote:
            send_alert(
                "gate_rejected",
                f"challenger v{decision.challenger.version} rejected: {decision.reason}",
                {"dag_run_id": run_id, "decision_id": evaluated["decision_id"]},
            )
        return record

    @task
    def confirm_serving(record: dict) -> dict:
        """The running service reports the new champion (or: no service is running, said in the log)."""
        import logging

        from ml_platform.config import get_settings
        from ml_platform.serving.bento import confirm_serving as confirm

        s = get_settings()
        if record["action"] != "promote":
            return {"confirmed": False, "note": "challenger rejected: the champion did not change"}
        out = confirm(
            record["champion_version"],
            f"http://127.0.0.1:{s.serving_port}",
            timeout=s.serving_poll_seconds * 3 + 30,
            token=s.api_token,
        )
        logging.getLogger(__name__).info("confirm_serving: %s", out)
        return out

    ev = evaluate()
    g = gate(ev)
    tag = build_bento(ev)
    smoke = smoke_test(tag, ev)
    applied = link_results(apply_decision(ev), ResultLink("Champion version", model_version("champion_version")))
    g >> [tag, applied]
    smoke >> applied
    link_results(confirm_serving(applied), ResultLink("Service API docs", service_docs()))


serving_deploy()
