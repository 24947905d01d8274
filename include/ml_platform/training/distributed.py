"""Distributed final fit: XGBoost through `xgboost.spark` and the MLP through Spark's
`TorchDistributor`, for training sets too big for one process.

Selected by the `distributed` param of the training DAG (`ml-platform train --distributed`): the
Optuna search still runs its trials locally, then the best configuration is refitted here when
its family is xgboost or mlp (the scikit-learn families have no distributed path and are fitted
locally). Both return the same `Fitted` objects as `families.fit_family`, so the registered
pyfunc, SHAP and evaluation do not change.

- XGBoost: `SparkXGBClassifier(num_workers=N)` trains one booster over N Spark tasks (barrier
  mode: the session needs N task slots, e.g. `local[2]` or two 1-core workers), with the
  validation rows marked by a column for early stopping; the booster comes back to the driver.
  `delta_training_frame` gives it the training set read from Delta by the executors and encoded
  there (`mapInPandas` with the encoder fitted on the training cutoffs): no row goes through the
  driver.
- MLP: `TorchDistributor(num_processes=N)` starts N torch processes (gloo,
  DistributedDataParallel), each on its shard of every epoch's permutation. Rank 0 evaluates,
  decides early stopping (broadcast to all ranks) and keeps the best weights. On a local master
  the processes run beside the driver (`local_mode=True`) and the weights come back through a
  file (the distributor's local-mode return value comes from whichever rank finishes last); on a
  cluster they run as a barrier stage on the executors (`local_mode=False`) and the weights are
  rank 0's return value.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ml_platform.training.families import MLPFitted, XGBFitted, _mlp, numpy_state, pos_weight, val_auc

DISTRIBUTED_FAMILIES = ("xgboost", "mlp")


def fit_distributed(
    spark: Any,
    family: str,
    params: dict[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    num_workers: int = 2,
    seed: int = 0,
    frame: Any = None,
) -> Any:
    """Fit `family` (xgboost or mlp) over `num_workers` Spark tasks / torch processes. For xgboost,
    `frame` (a Spark DataFrame from `delta_training_frame`) replaces the arrays as its input."""
    if family == "xgboost":
        if frame is None:
            frame = _arrays_frame(spark, x_train, y_train, x_val, y_val)
        return fit_xgboost_spark(spark, params, frame, pos_weight(y_train), num_workers=num_workers, seed=seed)
    if family == "mlp":
        return fit_mlp_torch_distributor(
            spark, params, x_train, y_train, x_val, y_val, num_processes=num_workers, seed=seed
        )
    raise ValueError(
        f"family {family!r} has no distributed path; distributed families: {', '.join(DISTRIBUTED_FAMILIES)}"
    )


def _arrays_frame(spark: Any, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> Any:
    """In-memory arrays as the frame `fit_xgboost_spark` takes (f0..fN, label, is_val)."""
    import pandas as pd

    names = [f"f{i}" for i in range(x_train.shape[1])]
    pdf = pd.DataFrame(np.vstack([x_train, x_val]).astype("float64"), columns=names)
    pdf["label"] = np.concatenate([y_train, y_val]).astype("float64")
    pdf["is_val"] = np.r_[np.zeros(len(y_train), bool), np.ones(len(y_val), bool)]
    return spark.createDataFrame(pdf)


def delta_training_frame(
    spark: Any,
    path: str,
    version: int,
    training_set_id: str,
    encoder: Any,
    train_cutoffs: list[Any],
    val_cutoffs: list[Any],
    label: str = "churned",
) -> Any:
    """The training and validation rows of a materialised training set (`ml.training_sets` at
    `version`, partition `training_set_id`) as `fit_xgboost_spark`'s frame, read and encoded by the
    executors: f0..fN (the encoder's matrix), label, is_val."""
    from datetime import date

    import pandas as pd
    from pyspark.sql import functions as F

    def day(c: Any) -> date:
        return pd.Timestamp(c).date()

    train, val = [day(c) for c in train_cutoffs], [day(c) for c in val_cutoffs]
    rows = (
        spark.read.format("delta")
        .option("versionAsOf", version)
        .load(path)
        .where(F.col("training_set_id") == F.lit(training_set_id))
        .where(F.col("cutoff_date").isin([*train, *val]))
    )
    width = len(encoder.output_names)
    schema = ", ".join([*(f"f{i} double" for i in range(width)), "label double", "is_val boolean"])

    def encode(batches: Any) -> Any:
        for pdf in batches:
            out = pd.DataFrame(encoder.transform(pdf).astype("float64"), columns=[f"f{i}" for i in range(width)])
            out["label"] = pdf[label].astype("float64").to_numpy()
            out["is_val"] = pd.to_datetime(pdf["cutoff_date"]).dt.date.isin(val).to_numpy()
            yield out

    return rows.mapInPandas(encode, schema)


def fit_xgboost_spark(
    spark: Any,
    params: dict[str, Any],
    frame: Any,
    positive_weight: float,
    *,
    num_workers: int = 2,
    seed: int = 0,
) -> XGBFitted:
    """One booster over `num_workers` barrier tasks on `frame` (f0..fN, label, is_val)."""
    from xgboost.spark import SparkXGBClassifier

    names = [c for c in frame.columns if c.startswith("f") and c[1:].isdigit()]
    frame = frame.repartition(num_workers)
    clf = SparkXGBClassifier(
        features_col=names,
        label_col="label",
        validation_indicator_col="is_val",
        num_workers=num_workers,
        tree_method="hist",
        max_depth=params["max_depth"],
        learning_rate=params["learning_rate"],
        min_child_weight=params["min_child_weight"],
        subsample=params["subsample"],
        colsample_bytree=params["colsample_bytree"],
        reg_lambda=params["reg_lambda"],
        n_estimators=params["n_rounds"],
        early_stopping_rounds=30,
        eval_metric="auc",
        random_state=seed,
        scale_pos_weight=positive_weight if params.get("balanced") else 1.0,
        missing=float("nan"),
    )
    booster = clf.fit(frame).get_booster()
    best = getattr(booster, "best_iteration", None)
    if best is not None:
        booster = booster[: int(best) + 1]
    booster.feature_names = None  # scored from plain float64 matrices, like the local path
    booster.feature_types = None
    return XGBFitted("xgboost", booster)


def _ddp_train(data: str | dict[str, Any], out_path: str, params: dict[str, Any], seed: int) -> bytes | None:
    """One rank of the MLP training (a torchrun process started by TorchDistributor). `data`: an
    .npz path (local mode) or the arrays themselves (shipped to the executors with the function).
    Rank 0 returns the best weights (torch.save bytes), and writes them to `out_path` if given."""
    import io

    import numpy as np
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    d = np.load(data) if isinstance(data, str) else data
    xt, yt = torch.from_numpy(d["xt"]), torch.from_numpy(d["yt"]).unsqueeze(1)
    xv, yv = torch.from_numpy(d["xv"]), d["yv"]
    net = DistributedDataParallel(_mlp(xt.shape[1]))  # rank 0's initial weights go to every rank
    opt = torch.optim.AdamW(net.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([float(d["pos_weight"])]))
    gen = torch.Generator().manual_seed(seed)  # the same permutation on every rank
    per_rank = len(xt) // world  # equal step counts: every rank joins every all-reduce
    bs = params["batch_size"]
    best_auc, waited, stop, best = -1.0, 0, torch.zeros(1), b""
    for _ in range(params["max_epochs"]):
        net.train()
        mine = torch.randperm(len(xt), generator=gen)[rank * per_rank : (rank + 1) * per_rank]
        for i in range(0, per_rank - 1, bs):
            idx = mine[i : i + bs]
            if len(idx) < 2:  # BatchNorm needs two rows (the same on every rank)
                continue
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        if rank == 0:
            net.eval()
            with torch.no_grad():
                auc = val_auc(yv, torch.sigmoid(net.module(xv)).squeeze(1).numpy())
            if auc > best_auc + 1e-4:
                best_auc, waited = auc, 0
                buf = io.BytesIO()
                torch.save(net.module.state_dict(), buf)
                best = buf.getvalue()
            else:
                waited += 1
            stop[0] = 1.0 if waited >= params["patience"] else 0.0
        dist.broadcast(stop, src=0)
        if stop[0] > 0:
            break
    dist.barrier()
    dist.destroy_process_group()
    if rank != 0:
        return None
    if out_path:
        Path(out_path).write_bytes(best)
    return best


def fit_mlp_torch_distributor(
    spark: Any,
    params: dict[str, Any],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    num_processes: int = 2,
    seed: int = 0,
) -> MLPFitted:
    import torch
    from pyspark.ml.torch.distributor import TorchDistributor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pre = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()).fit(x_train)
    arrays = {
        "xt": pre.transform(x_train).astype("float32"),
        "yt": np.asarray(y_train, dtype="float32"),
        "xv": pre.transform(x_val).astype("float32"),
        "yv": np.asarray(y_val, dtype="float64"),
        "pos_weight": pos_weight(y_train) if params.get("balanced") else 1.0,
    }
    if not spark.sparkContext.master.startswith("local"):  # a cluster: the ranks run on its executors
        best = TorchDistributor(num_processes=num_processes, local_mode=False, use_gpu=False).run(
            _ddp_train, arrays, "", dict(params), seed
        )
    else:
        with tempfile.TemporaryDirectory(prefix="mlp-ddp-") as tmp:
            data, out = Path(tmp) / "data.npz", Path(tmp) / "rank0_best.pt"
            np.savez(data, **arrays)
            TorchDistributor(num_processes=num_processes, local_mode=True, use_gpu=False).run(
                _ddp_train, str(data), str(out), dict(params), seed
            )
            best = out.read_bytes() if out.exists() else None
    if not best:
        raise RuntimeError("distributed MLP training ended without weights from rank 0")
    state = torch.load(io.BytesIO(best), weights_only=True)
    return MLPFitted("mlp", pre, numpy_state(state), x_train.shape[1])
