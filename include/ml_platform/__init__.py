"""ml_platform: the library behind the DAGs, Spark jobs and CLI (importable without Airflow)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
