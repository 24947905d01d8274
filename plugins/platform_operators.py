"""Airflow-facing adapters of the platform (Airflow adds plugins/ to sys.path)."""

from __future__ import annotations

import sys
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator


class LakeSparkSubmitOperator(SparkSubmitOperator):
    """spark-submit with the lake's Spark configuration (Delta jars from the set-up cache, UTC).

    The configuration is resolved in `execute()`, never at parse time, and merged under any
    `conf` given to the operator. The master comes from the `spark_default` connection; on a
    cluster master the platform's code is shipped with the job as a zip (`--py-files`).
    With `ML_PLATFORM_SPARK_REMOTE` set, the application runs as a client of that Spark Connect
    server instead (no spark-submit, no JVM in the task). `engine` names a job whose work either
    engine can do, as "module:function" returning its `ml_platform.engines.Engine`; when that
    engine starts no JVM (the embedded one), the application runs with this Python, no spark-submit (the job
    makes the same choice and starts no Spark session). `engine_kwargs` (templated) are passed to
    that function, e.g. the steps a DAG run's params ask for.
    """

    template_fields = (*SparkSubmitOperator.template_fields, "engine_kwargs")

    def __init__(
        self, *, engine: str | None = None, engine_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.engine_kwargs = engine_kwargs or {}

    def execute(self, context: Any) -> None:
        from ml_platform.config import get_settings

        why = None
        if get_settings().spark_remote:
            why = "a Spark Connect client (ML_PLATFORM_SPARK_REMOTE)"
        elif self.engine:
            import importlib

            from airflow.sdk.exceptions import AirflowFailException

            from ml_platform.errors import MlPlatformError

            module, _, function = self.engine.partition(":")
            try:
                choice = getattr(importlib.import_module(module), function)(**self.engine_kwargs)
            except MlPlatformError as e:  # e.g. ML_PLATFORM_ENGINE_<KIND>=embedded on a table it cannot read
                raise AirflowFailException(str(e)) from None
            self.log.info("engine: %s (%s)", choice.name, choice.reason)
            if not choice.starts_jvm:
                why = f"the {choice.name} engine"
        if why:
            from airflow.providers.common.compat.sdk import AirflowException

            from ml_platform.lake.spark import run_python_job

            rc = run_python_job(
                self.application, list(self.application_args or []), self.env_vars or {}, self.log.info, why
            )
            if rc != 0:
                raise AirflowException(f"{self.application} exited with {rc} (its output is above)")
            return None
        from ml_platform.lake.spark import spark_conf

        self.conf = {**spark_conf(), **(self.conf or {})}
        # on a cluster master: the platform's code travels with the job (--py-files), as on any cluster
        if archive := self.conf.pop("spark.submit.pyFiles", None):
            self.py_files = ",".join(p for p in (self.py_files, archive) if p)
        # a driver started by spark-submit must run the same Python as the worker
        self.conf.setdefault("spark.pyspark.python", sys.executable)
        self.conf.setdefault("spark.pyspark.driver.python", sys.executable)
        return super().execute(context)
