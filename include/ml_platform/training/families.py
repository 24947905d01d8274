"""Model families of the AutoML search: search spaces, fitting with pruning hooks, probabilities.

Families: XGBoost (hist), scikit-learn logistic regression (with scaling), random forest,
extra trees, and a PyTorch MLP like the seed's (hidden 256-128-64, BatchNorm, ReLU, dropout 0.3,
BCE loss, early stopping). Every family takes the same float64 feature matrix (NaN for missing)
and returns a `Fitted` object whose `predict_proba` gives P(churn) as float64.

Class imbalance: every family has a `balanced` search parameter; when true the positive class
is up-weighted by negatives/positives (xgboost `scale_pos_weight`, scikit-learn
`class_weight="balanced"`, the MLP's BCE `pos_weight`). Weighting helps ranking on rare churn
but inflates probabilities, so the search decides by validation AUC; the final fit is then
Platt-scaled on the validation cutoff (`calibrate`: a logistic fit on the log-odds, monotone, so
the ranking and AUC are unchanged) and the evaluation reports calibration (ECE, Brier) of that.

`report(step, value)` is called with the validation ROC AUC per xgboost round block / MLP epoch;
the Optuna objective passes a function that reports to the trial and raises `optuna.TrialPruned`
when the pruner says so. Fitting is seeded; with one thread it is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ml_platform.errors import MlPlatformError
from ml_platform.evaluation.metrics import roc_auc
from ml_platform.training import FAMILIES

Report = Callable[[int, float], None]


class Fitted(Protocol):
    family: str

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(churn) per row, float64."""


def check_families(names: Sequence[str]) -> list[str]:
    """The requested families, or a clear error naming the unknown ones."""
    names = [n.strip() for n in names if n.strip()]
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown or not names:
        raise MlPlatformError(f"unknown model families {unknown}; choose from {', '.join(FAMILIES)}")
    return names


def pos_weight(y: np.ndarray) -> float:
    """negatives / positives (1.0 when a class is absent)."""
    pos = float(np.sum(y == 1))
    return (len(y) - pos) / pos if 0 < pos < len(y) else 1.0


def suggest_params(trial: Any, family: str) -> dict[str, Any]:
    """The search space of `family` (Optuna trial API)."""
    params = _suggest(trial, family)
    params["balanced"] = trial.suggest_categorical(f"{family}_balanced", [False, True])
    return params


def _suggest(trial: Any, family: str) -> dict[str, Any]:
    if family == "xgboost":
        return {
            "max_depth": trial.suggest_int("xgb_max_depth", 2, 8),
            "learning_rate": trial.suggest_float("xgb_learning_rate", 0.02, 0.3, log=True),
            "min_child_weight": trial.suggest_float("xgb_min_child_weight", 1.0, 20.0, log=True),
            "subsample": trial.suggest_float("xgb_subsample", 0.6, 1.0),
            "colsample_bytree": trial.suggest_float("xgb_colsample_bytree", 0.5, 1.0),
            "reg_lambda": trial.suggest_float("xgb_reg_lambda", 1e-3, 10.0, log=True),
            "n_rounds": trial.suggest_int("xgb_n_rounds", 50, 400, step=50),
        }
    if family == "logreg":
        return {"C": trial.suggest_float("lr_C", 1e-3, 10.0, log=True)}
    if family in ("random_forest", "extra_trees"):
        p = "rf" if family == "random_forest" else "et"
        return {
            "n_estimators": trial.suggest_int(f"{p}_n_estimators", 50, 300, step=50),
            "max_depth": trial.suggest_int(f"{p}_max_depth", 3, 16),
            "min_samples_leaf": trial.suggest_int(f"{p}_min_samples_leaf", 1, 50, log=True),
            "max_features": trial.suggest_float(f"{p}_max_features", 0.3, 1.0),
        }
    if family == "mlp":
        return {
            "lr": trial.suggest_float("mlp_lr", 1e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("mlp_weight_decay", 1e-6, 1e-3, log=True),
            "batch_size": trial.suggest_categorical("mlp_batch_size", [128, 256, 512]),
            "max_epochs": 40,
            "patience": 5,
        }
    raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


def val_auc(y: np.ndarray, p: np.ndarray) -> float:
    """The validation AUC a search ranks models by (`evaluation.metrics.roc_auc`); validation rows of
    one class are refused (`training.splits` refuses them first, naming the cutoff)."""
    auc = roc_auc(y, p)
    if auc is None:
        raise MlPlatformError("the validation rows hold one class only: no AUC to rank models by")
    return auc


@dataclass
class SklearnFitted:
    family: str
    pipeline: Any

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.pipeline.predict_proba(np.asarray(x, dtype="float64"))[:, 1].astype("float64")


@dataclass
class XGBFitted:
    family: str
    booster: Any

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        # inplace_predict skips building a DMatrix: the same trees and NaN handling, far less
        # overhead for the one-row requests of online serving
        return np.asarray(self.booster.inplace_predict(np.asarray(x, dtype="float64")), dtype="float64")


@dataclass
class MLPFitted:
    """The MLP's eval-mode forward pass in numpy: `state` holds the network's weights as float32
    arrays (the keys of `_mlp`'s state dict), so scoring, and the serving image, need no torch."""

    family: str
    pre: Any  # imputer + scaler (sklearn pipeline)
    state: dict[str, Any]
    n_features: int

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.pre.transform(np.asarray(x, dtype="float64")).astype("float32")
        w = {k: np.asarray(v, dtype="float32") for k, v in self.state.items()}  # tensors of older pickles too
        for i in range(len(MLP_HIDDEN)):  # Linear, BatchNorm1d (running statistics), ReLU, Dropout (off)
            lin, bn = 4 * i, 4 * i + 1
            z = z @ w[f"{lin}.weight"].T + w[f"{lin}.bias"]
            z = (z - w[f"{bn}.running_mean"]) / np.sqrt(w[f"{bn}.running_var"] + BATCH_NORM_EPS)
            z = np.maximum(z * w[f"{bn}.weight"] + w[f"{bn}.bias"], 0.0)
        out = 4 * len(MLP_HIDDEN)
        logit = (z @ w[f"{out}.weight"].T + w[f"{out}.bias"])[:, 0].astype("float64")
        return 1.0 / (1.0 + np.exp(-logit))


def numpy_state(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """A torch state dict as float32 numpy arrays (BatchNorm's batch counter dropped)."""
    return {k: v.detach().cpu().numpy().astype("float32") for k, v in state.items() if "num_batches" not in k}


@dataclass
class Calibrated:
    """`base` with Platt scaling: P = sigmoid(slope * logit(p_base) + intercept)."""

    family: str
    base: Any
    slope: float
    intercept: float

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.slope * _logit(self.base.predict_proba(x)) + self.intercept)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype="float64")


def calibrate(fitted: Fitted, x_val: np.ndarray, y_val: np.ndarray) -> Fitted:
    """Platt-scale `fitted` on held-out rows; unchanged when they cannot support it (one class,
    or a fit that would reverse the ranking)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y_val, dtype="float64")
    if len(np.unique(y)) < 2:
        return fitted
    z = _logit(fitted.predict_proba(x_val)).reshape(-1, 1)
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
    slope, intercept = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if not slope > 0:
        return fitted
    return Calibrated(fitted.family, fitted, slope, intercept)


MLP_HIDDEN = (256, 128, 64)
BATCH_NORM_EPS = 1e-5  # torch's BatchNorm1d default, which `_mlp` uses


def _mlp(n_features: int) -> Any:
    from torch import nn

    layers: list[Any] = []
    width = n_features
    for h in MLP_HIDDEN:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h, eps=BATCH_NORM_EPS), nn.ReLU(), nn.Dropout(0.3)]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def _sklearn(family: str, params: dict[str, Any], seed: int, threads: int) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    impute = SimpleImputer(strategy="median", keep_empty_features=True)
    weight = "balanced" if params.get("balanced") else None
    if family == "logreg":
        return make_pipeline(
            impute, StandardScaler(), LogisticRegression(C=params["C"], max_iter=2000, class_weight=weight)
        )
    cls = RandomForestClassifier if family == "random_forest" else ExtraTreesClassifier
    return make_pipeline(
        impute,
        cls(
            n_estimators=params["n_estimators"],
            max_depth=params["max_depth"],
            min_samples_leaf=params["min_samples_leaf"],
            max_features=params["max_features"],
            class_weight=weight,
            n_jobs=threads,
            random_state=seed,
        ),
    )


def fit_family(
    family: str,
    params: dict[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int = 0,
    threads: int = 1,
    report: Report | None = None,
) -> Fitted:
    """Fit `family` with `params`; validation AUC goes to `report` as training progresses."""
    x_train, x_val = np.asarray(x_train, dtype="float64"), np.asarray(x_val, dtype="float64")
    y_train, y_val = np.asarray(y_train, dtype="float64"), np.asarray(y_val, dtype="float64")
    if family in ("logreg", "random_forest", "extra_trees"):
        pipe = _sklearn(family, params, seed, threads).fit(x_train, y_train)
        fitted: Fitted = SklearnFitted(family, pipe)
        if report:
            report(0, val_auc(y_val, fitted.predict_proba(x_val)))
        return fitted
    if family == "xgboost":
        return _fit_xgb(params, x_train, y_train, x_val, y_val, seed, threads, report)
    if family == "mlp":
        return _fit_mlp(params, x_train, y_train, x_val, y_val, seed, threads, report)
    raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")


def _fit_xgb(
    params: dict[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int,
    threads: int,
    report: Report | None,
) -> XGBFitted:
    import xgboost as xgb

    booster_params = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "max_depth": params["max_depth"],
        "eta": params["learning_rate"],
        "min_child_weight": params["min_child_weight"],
        "subsample": params["subsample"],
        "colsample_bytree": params["colsample_bytree"],
        "lambda": params["reg_lambda"],
        "nthread": threads,
        "seed": seed,
        "scale_pos_weight": pos_weight(y_train) if params.get("balanced") else 1.0,
    }
    dtrain, dval = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_val, label=y_val)

    class _Report(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if report and (epoch + 1) % 25 == 0:
                report(epoch + 1, float(evals_log["val"]["auc"][-1]))
            return False

    booster = xgb.train(
        booster_params,
        dtrain,
        num_boost_round=params["n_rounds"],
        evals=[(dval, "val")],
        early_stopping_rounds=30,
        callbacks=[_Report()],
        verbose_eval=False,
    )
    best = booster.best_iteration + 1 if booster.best_iteration is not None else params["n_rounds"]
    return XGBFitted("xgboost", booster[:best])


def _fit_mlp(
    params: dict[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int,
    threads: int,
    report: Report | None,
) -> MLPFitted:
    import torch
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    pre = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()).fit(x_train)
    xt = torch.from_numpy(pre.transform(x_train).astype("float32"))
    yt = torch.from_numpy(y_train.astype("float32")).unsqueeze(1)
    xv = torch.from_numpy(pre.transform(x_val).astype("float32"))
    net = _mlp(x_train.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.tensor([pos_weight(y_train) if params.get("balanced") else 1.0])
    )
    gen = torch.Generator().manual_seed(seed)
    best_auc, best_state, waited = -1.0, None, 0
    for epoch in range(params["max_epochs"]):
        net.train()
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), params["batch_size"]):
            idx = order[i : i + params["batch_size"]]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            auc = val_auc(y_val, torch.sigmoid(net(xv)).squeeze(1).numpy())
        if report:
            report(epoch, auc)
        if auc > best_auc + 1e-4:
            best_auc, waited = auc, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= params["patience"]:
                break
    return MLPFitted("mlp", pre, numpy_state(best_state or net.state_dict()), x_train.shape[1])
