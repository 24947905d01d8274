"""The registered model's contract, shared by training, the registry, serving and monitoring:
the served pyfunc (`pyfunc`), its feature encoding (`encoding`), SHAP explanations (`explain`),
scoring a frame or a Spark table with it (`scoring`) and the names of its artifacts
(`artifacts`). It knows nothing of how a model is trained (docs/ARCHITECTURE.md)."""

__all__: list[str] = []
