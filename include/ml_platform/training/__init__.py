"""Training: churn labels (`labels`), cutoff splits (`splits`), model families (`families`), the
shared Optuna study (`hpo`), the distributed final fit (`distributed`) and the whole flow
(`train`). What a trained model is lives in `ml_platform.model`, how it is judged in
`ml_platform.evaluation`."""
