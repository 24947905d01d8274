"""The served model: one MLflow `PythonModel` per family, wrapping preprocessing and the estimator.

`predict` takes a DataFrame with the feature columns (any extra columns are ignored), casts every
feature to float64 (missing values become NaN, which every family handles) and returns the churn
probability as a float64 Series. BentoML, Spark batch scoring (`spark_udf(..., result_type="double")`)
and promotion re-scoring all load this same object, so their numbers agree.
"""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel

from ml_platform.model.encoding import FeatureEncoder
from ml_platform.model.explain import shap_values, top_contributions


class ChurnModel(PythonModel):
    """`encoder`: the training split's FeatureEncoder (numeric columns as they are, categorical
    ones one-hot); `background`: a sample of encoded training rows kept for explanations."""

    def __init__(self, fitted: Any, feature_names: list[str], background: Any = None, encoder: Any = None) -> None:
        self.fitted = fitted
        self.feature_names = list(feature_names)
        self.background = background
        self.encoder = encoder or FeatureEncoder(self.feature_names)

    @property
    def family(self) -> str:
        return str(self.fitted.family)

    def matrix(self, frame: Any) -> Any:
        """The float64 matrix of `frame` as the model was trained on; a clear error for missing columns."""
        encoder = getattr(self, "encoder", None) or FeatureEncoder(self.feature_names)  # models pickled before encoders
        return encoder.transform(frame)

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # no type hints here: MLflow would read them as the model's input schema
        import pandas as pd

        x = self.matrix(model_input)
        probs = self.fitted.predict_proba(x) if len(x) else []
        return pd.Series(probs, dtype="float64", name="churn_probability")

    def predict_records(self, records: list[dict[str, Any]]) -> Any:
        """`predict` for feature dicts (None: missing), the online path. An all-numeric model goes
        straight to one float64 matrix: building a DataFrame (pandas 3 string column index) cost
        more than the model for one row. With categorical columns, through `predict`."""
        import numpy as np

        encoder = getattr(self, "encoder", None)
        if encoder is None or not encoder.categories:
            cols = encoder.columns if encoder is not None else self.feature_names
            if not records:
                return np.empty(0, dtype="float64")
            x = np.array([[np.nan if r.get(c) is None else r[c] for c in cols] for r in records], dtype="float64")
            return np.asarray(self.fitted.predict_proba(x), dtype="float64")
        import pandas as pd

        return self.predict(None, pd.DataFrame.from_records(records, columns=self.feature_names)).to_numpy("float64")

    def explain(self, frame: Any, top_k: int = 5) -> list[list[dict[str, Any]]]:
        """Per row, the `top_k` encoded features with the largest SHAP contribution (serving's `?explain=true`)."""
        x = self.matrix(frame)
        values, _ = shap_values(self.fitted, x, getattr(self, "background", None))
        encoder = getattr(self, "encoder", None)
        names = encoder.output_names if encoder else self.feature_names
        return top_contributions(values, x, names, top_k)
