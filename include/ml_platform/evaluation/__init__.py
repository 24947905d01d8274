"""Evaluating a model: metrics (ranking, calibration, thresholds) and the HTML evaluation report
with SHAP and fairness (docs/ARCHITECTURE.md)."""

__all__: list[str] = []
