"""The served model: one MLflow `PythonModel` per family, wrapping preprocessing and the estimator.

`predict` takes a DataFrame with the feature columns (any extra columns are ignored), casts every
feature to float64 (missing values become NaN, which every family handles) and returns the churn
probability as a float64 Series. BentoML, Spark batch scoring (`spark_udf(..., result_type="double")`)
and promotion re-scoring all load this same object, so their numbers agree.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc


class ChurnModel(mlflow.pyfunc.PythonModel):
    """`background`: a sample of training rows (float64 matrix) kept for explaining predictions."""

    def __init__(self, fitted: Any, feature_names: list[str], background: Any = None) -> None:
        self.fitted = fitted
        self.feature_names = list(feature_names)
        self.background = background

    @property
    def family(self) -> str:
        return str(self.fitted.family)

    def matrix(self, frame: Any) -> Any:
        """The float64 feature matrix of `frame`, in training order; a clear error for missing columns."""
        import numpy as np
        import pandas as pd

        df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
        missing = [c for c in self.feature_names if c not in df.columns]
        if missing:
            raise ValueError(f"input lacks feature column(s) {missing}")
        return np.column_stack([pd.to_numeric(df[c], errors="coerce").astype("float64").to_numpy(na_value=np.nan)
                                for c in self.feature_names]) if len(df) else np.empty((0, len(self.feature_names)))

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # no type hints here: MLflow would read them as the model's input schema
        import pandas as pd

        x = self.matrix(model_input)
        probs = self.fitted.predict_proba(x) if len(x) else []
        return pd.Series(probs, dtype="float64", name="churn_probability")

    def explain(self, frame: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """Per row, the `top_k` features with the largest SHAP contribution (serving's `?explain=true`)."""
        from ml_platform.training.explain import shap_values, top_contributions

        x = self.matrix(frame)
        values, _ = shap_values(self.fitted, x, getattr(self, "background", None))
        return top_contributions(values, x, self.feature_names, top_k)
