"""Evaluation plots and a one-file HTML report (PNG files a person can open, also logged to MLflow).

Plots: ROC, precision-recall, confusion matrix at the chosen threshold, calibration curve.
(SHAP and fairness plots are the next step of issue 4.)
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np


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
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["stays", "churns"], yticklabels=["stays", "churns"],
           xlabel="predicted", ylabel="actual", title=f"Confusion matrix (threshold {threshold:.3f})")
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


def html_report(title: str, metrics: dict[str, Any], plots: dict[str, Path], facts: dict[str, Any], out: Path) -> Path:
    """One self-contained HTML file: facts, metrics table and the plots inlined as PNG."""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in metrics.items())
    info = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in facts.items())
    imgs = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{html.escape(n)}</figcaption></figure>" for n, p in plots.items())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:4px 8px}}
figure{{display:inline-block;margin:8px}}</style></head><body><h1>{html.escape(title)}</h1>
<h2>Model</h2><table>{info}</table><h2>Test metrics</h2><table>{rows}</table><h2>Plots</h2>{imgs}</body></html>""")
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)
