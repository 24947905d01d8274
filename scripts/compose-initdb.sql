-- Extra databases of the compose stack: MLflow's and Optuna's (never share MLflow's: both keep
-- an alembic_version table).
CREATE DATABASE mlflow;
CREATE DATABASE optuna;
