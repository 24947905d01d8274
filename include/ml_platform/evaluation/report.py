"""Evaluation plots and a one-file HTML report (PNG files a person can open, also logged to MLflow).

Plots: ROC, precision-recall, confusion matrix at the chosen threshold, calibration curve, SHAP
(beeswarm and mean |SHAP|) and fairness by group; the report also gives the fairness figures as
one table per sensitive attribute.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ml_platform.evaluation.metrics import roc_auc
from ml_platform.model.explain import shap_values


def _fig() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def evaluation_plots(y: np.ndarray, p: np.ndarray, threshold: float, out_dir: Path) -> dict[str, Path]:
    """Write the evaluation PNGs into `out_dir`; name -> path."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    plt = _fig()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test cutoff)")
    ax.legend(loc="lower right")
    paths["roc"] = out_dir / "roc.png"

    def save(name: str) -> None:
        fig.tight_layout()
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)

    save("roc")
    prec, rec, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(rec, prec)
    ax.axhline(float(np.mean(y)), ls="--", color="grey", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test cutoff)")
    ax.legend()
    paths["precision_recall"] = out_dir / "precision_recall.png"
    save("precision_recall")

    cm = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v:,}", ha="center", va="center", color="black")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["stays", "churns"],
        yticklabels=["stays", "churns"],
        xlabel="predicted",
        ylabel="actual",
        title=f"Confusion matrix (threshold {threshold:.3f})",
    )
    paths["confusion_matrix"] = out_dir / "confusion_matrix.png"
    save("confusion_matrix")

    frac, mean_p = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(mean_p, frac, "o-", label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed churn rate", title="Calibration (deciles)")
    ax.legend()
    paths["calibration"] = out_dir / "calibration.png"
    save("calibration")
    return paths


def html_report(
    title: str,
    metrics: dict[str, Any],
    plots: dict[str, Path],
    facts: dict[str, Any],
    out: Path,
    fairness: dict[str, Any] | None = None,
) -> Path:
    """One self-contained HTML file: facts, metrics table, the fairness tables (`fairness_report`'s
    dict: one table per sensitive attribute, a row per group) and the plots inlined as PNG."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in metrics.items())
    fair = _fairness_html(fairness) if fairness is not None else ""
    info = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in facts.items())
    imgs = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{html.escape(n)}</figcaption></figure>"
        for n, p in plots.items()
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:4px 8px}}
th{{border:1px solid #ccc;padding:4px 8px;background:#f4f4f4}}td.n{{text-align:right}}
figure{{display:inline-block;margin:8px}}</style></head><body><h1>{html.escape(title)}</h1>
<h2>Model</h2><table>{info}</table><h2>Test metrics</h2><table>{rows}</table>{fair}<h2>Plots</h2>{imgs}</body></html>""")
    return out


_FAIR_COLUMNS = (("rows", "rows"), ("selection_rate", "selection rate"), ("tpr", "TPR"), ("fpr", "FPR"), ("auc", "AUC"))


def _fairness_html(fairness: dict[str, Any]) -> str:
    """The fairness section: a note when it was skipped, else per attribute its two differences and a
    table of groups (rows, selection rate, TPR, FPR, AUC at the report's threshold)."""
    if "skipped" in fairness:
        return f"<h2>Fairness</h2><p>skipped: {html.escape(str(fairness['skipped']))}</p>"
    parts = ["<h2>Fairness</h2><p>At the threshold above, per group of each sensitive attribute.</p>"]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in _FAIR_COLUMNS)
    for attribute, res in fairness.items():
        body = "".join(
            f"<tr><td>{html.escape(str(group))}</td>"
            + "".join(f'<td class="n">{html.escape(_fmt_cell(vals.get(key)))}</td>' for key, _ in _FAIR_COLUMNS)
            + "</tr>"
            for group, vals in res["by_group"].items()
        )
        parts.append(
            f"<h3>{html.escape(attribute)}</h3><p>demographic parity difference "
            f"{_fmt_cell(res['demographic_parity_difference'])}, equalized odds difference "
            f"{_fmt_cell(res['equalized_odds_difference'])}</p>"
            f"<table><tr><th>{html.escape(attribute)}</th>{head}</tr>{body}</table>"
        )
    return "".join(parts)


def _fmt_cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"  # e.g. AUC of a group with one class only
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


def shap_plots(
    fitted: Any,
    x: np.ndarray,
    background: np.ndarray,
    feature_names: list[str],
    out_dir: Path,
    max_rows: int = 300,
    seed: int = 0,
) -> tuple[dict[str, Path], dict[str, float]]:
    """SHAP beeswarm and mean-|SHAP| bar chart on up to `max_rows` test rows.

    TreeExplainer for xgboost and the forests (on the imputed matrix), a permutation explainer
    with a sampled background for logistic regression and the MLP. Returns the plots and the
    mean |SHAP| per feature.
    """
    plt = _fig()
    rng = np.random.default_rng(seed)
    rows = x[rng.choice(len(x), size=min(max_rows, len(x)), replace=False)]
    family = fitted.family
    values, shown = shap_values(fitted, rows, background, seed=seed)
    import shap

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"shap_summary": out_dir / "shap_summary.png", "shap_bar": out_dir / "shap_bar.png"}
    plt.figure()
    shap.summary_plot(values, shown, feature_names=feature_names, show=False, max_display=15)
    plt.tight_layout()
    plt.savefig(paths["shap_summary"], dpi=100)
    plt.close("all")
    mean_abs = dict(sorted(zip(feature_names, np.abs(values).mean(axis=0).tolist()), key=lambda kv: -kv[1]))
    fig, ax = plt.subplots(figsize=(5, 4.5))
    top = list(mean_abs.items())[:15][::-1]
    ax.barh([k for k, _ in top], [v for _, v in top])
    ax.set(xlabel="mean |SHAP value|", title=f"Feature importance ({family})")
    fig.tight_layout()
    fig.savefig(paths["shap_bar"], dpi=100)
    plt.close(fig)
    return paths, mean_abs


def fairness_report(
    y: np.ndarray, p: np.ndarray, threshold: float, groups: Any, out_dir: Path
) -> tuple[dict[str, Any], Path | None]:
    """fairlearn MetricFrame per sensitive attribute: selection rate, TPR, FPR, AUC per group,
    demographic parity and equalized odds differences; JSON-able dict and a plot."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    plt = _fig()
    pred = (p >= threshold).astype(int)

    def auc(yt: Any, yp: Any) -> float:  # a group of one class has no AUC: "n/a" in the report
        a = roc_auc(yt, yp)
        return float("nan") if a is None else a

    out: dict[str, Any] = {}
    cols = [c for c in groups.columns if groups[c].notna().any()]
    if not cols:
        return {"skipped": "no sensitive attribute present"}, None
    fig, axes = plt.subplots(len(cols), 1, figsize=(6, 2.6 * len(cols)), squeeze=False)
    for ax, col in zip(axes[:, 0], cols):
        g = groups[col].fillna("unknown").astype(str).to_numpy()
        mf = MetricFrame(
            metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=y,
            y_pred=pred,
            sensitive_features=g,
        )
        aucs = MetricFrame(metrics=auc, y_true=y, y_pred=p, sensitive_features=g).by_group
        by = mf.by_group.assign(auc=aucs, rows=pd_counts(g))
        out[col] = {
            "by_group": json.loads(by.to_json(orient="index")),
            "demographic_parity_difference": float(demographic_parity_difference(y, pred, sensitive_features=g)),
            "equalized_odds_difference": float(equalized_odds_difference(y, pred, sensitive_features=g)),
        }
        by[["selection_rate", "tpr", "fpr", "auc"]].plot.bar(ax=ax, rot=0)
        ax.set(
            title=f"{col}: DP diff {out[col]['demographic_parity_difference']:.3f}, "
            f"EO diff {out[col]['equalized_odds_difference']:.3f}",
            ylim=(0, 1),
            xlabel=col,
        )
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    path = out_dir / "fairness.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    (out_dir / "fairness.json").write_text(json.dumps(out, indent=2))
    return out, path


def pd_counts(g: np.ndarray) -> Any:
    import pandas as pd

    return pd.Series(g).value_counts()
