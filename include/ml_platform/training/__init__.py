"""Training: churn labels (`labels`), cutoff splits (`splits`), model families (`families`), the
shared Optuna study (`hpo`), the distributed final fit (`distributed`), evaluation (`metrics`,
`report`, `explain`), the served pyfunc (`pyfunc`, `scoring`), the whole flow (`train`) and the
one-command backtest on a user's file (`backtest`)."""
