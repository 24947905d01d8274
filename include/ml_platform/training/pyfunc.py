"""The served model's class under its old name: versions registered before `ml_platform.model`
existed pickled `ml_platform.training.pyfunc.ChurnModel`, and MLflow unpickles them from here."""

from ml_platform.model.pyfunc import ChurnModel

__all__ = ["ChurnModel"]
