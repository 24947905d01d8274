"""Airflow-facing adapters of the platform (Airflow adds plugins/ to sys.path)."""

from __future__ import annotations

import sys
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator


class LakeSparkSubmitOperator(SparkSubmitOperator):
    """spark-submit with the lake's Spark configuration (Delta jars from the set-up cache, UTC).

    The configuration is resolved in `execute()`, never at parse time, and merged under any
    `conf` given to the operator. The master comes from the `spark_default` connection.
    """

    def execute(self, context: Any) -> None:
        from ml_platform.lake.spark import spark_conf

        self.conf = {**spark_conf(), **(self.conf or {})}
        # a driver started by spark-submit must run the same Python as the worker
        self.conf.setdefault("spark.pyspark.python", sys.executable)
        self.conf.setdefault("spark.pyspark.driver.python", sys.executable)
        return super().execute(context)
