"""Training: churn labels (`labels`), cutoff splits (`splits`), model families (`families`), the
shared Optuna study (`hpo`), MLflow tracking (`tracking`), the distributed final fit
(`distributed`), the final fit and registration (`finalize`) and the whole flow (`train`). What
a trained model is lives in `ml_platform.model`, how it is judged in `ml_platform.evaluation`.

Layer 7 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

__all__ = ["FAMILIES"]

# The AutoML search's model families (`families` fits them). Here, free of numpy, so DAG files and
# the CLI can offer the list at parse time.
FAMILIES: tuple[str, ...] = ("xgboost", "logreg", "random_forest", "extra_trees", "mlp")
