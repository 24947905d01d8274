"""Lake layout (Delta table paths) and the one SparkSession factory."""

from ml_platform.lake.paths import TABLES, table_path
from ml_platform.lake.spark import delta_jars, get_spark, run_job, spark_conf

__all__ = ["TABLES", "delta_jars", "get_spark", "run_job", "spark_conf", "table_path"]
