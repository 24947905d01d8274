"""Names of the artifacts every registered model version carries in MLflow."""

#: The held-out test rows (features, label, sensitive attributes), under `evaluation/`: the
#: deployment gate scores champion and challenger on exactly these rows.
TEST_ROWS_FILE = "test_rows.parquet"
