"""Scoring a registered churn model: the same MLflow pyfunc everywhere.

`rescore` is the path promotion uses to score the champion and the challenger on the same
held-out rows; `spark_scorer` is the batch-scoring UDF (`result_type="double"`, the model runs
in this environment: `env_manager="local"`); BentoML loads the same pyfunc. All three take the
model's feature columns as doubles (NULL -> NaN) and return the churn probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def feature_names(model: Any) -> list[str]:
    """The input columns of a loaded pyfunc model, from its signature."""
    schema = model.metadata.get_input_schema()
    if schema is None:
        raise ValueError("the model has no input signature: it was not registered by this platform")
    return list(schema.input_names())


def input_types(model: Any) -> dict[str, str]:
    """Column name -> MLflow type name, from the model's input signature."""
    return schema_types(model.metadata.get_input_schema())


def schema_types(schema: Any) -> dict[str, str]:
    """Column name -> MLflow type name of an MLflow input schema (e.g. `get_model_info(uri).signature.inputs`)."""
    return {c.name: str(c.type) for c in schema.inputs}


def rescore(model: Any, frame: Any) -> np.ndarray:
    """Churn probabilities (float64) of `frame`'s rows; extra columns are ignored."""
    names, types = feature_names(model), input_types(model)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(f"rows lack feature column(s) {missing}")
    if all("double" in types.get(c, "double") for c in names):
        x = frame[names].astype("float64")  # NULL -> NaN
    else:
        x = frame[names].copy()
        for c in names:  # doubles as doubles; categorical columns stay strings
            x[c] = x[c].astype("float64") if "double" in types.get(c, "double") else x[c].astype("object")
    return np.asarray(model.predict(x), dtype="float64")


def spark_scorer(spark: Any, model_uri: str) -> Any:
    """A Spark UDF returning the churn probability as a double; call it on the feature columns."""
    import mlflow.pyfunc

    return mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local")
