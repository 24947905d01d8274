"""ml_platform: the library behind the DAGs, Spark jobs and CLI (importable without Airflow).

Its packages and the direction of their imports: docs/ARCHITECTURE.md ("Where code lives").
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
