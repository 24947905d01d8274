"""The evaluation report a person opens: fairness as readable tables, not a JSON blob."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from ml_platform.evaluation.report import fairness_report, html_report

pytestmark = pytest.mark.unit


class _Tables(HTMLParser):
    """Each <table>'s rows as lists of cell texts, and the text of every <h3>."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.h3: list[str] = []
        self._cell: list[str] | None = None
        self._in_h3 = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "h3":
            self._in_h3 = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "h3":
            self._in_h3 = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_h3:
            self.h3.append(data)


def test_fairness_is_one_table_per_attribute_with_a_row_per_group(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    p = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
    groups = pd.DataFrame(
        {
            "gender": rng.choice(["f", "m"], n),
            # one group with a single class: its AUC is undefined and says so
            "region": np.where(np.arange(n) < 5, "tiny", "big"),
        }
    )
    y[:5] = 1
    fairness, plot = fairness_report(y, p, 0.5, groups, tmp_path)
    assert plot is not None and plot.exists()
    out = html_report("m", {"roc_auc": 0.7}, {}, {"family": "xgboost"}, tmp_path / "r.html", fairness=fairness)
    text = out.read_text()
    assert "by_group" not in text and "{" not in text.split("<body>")[1]  # no JSON left for a reader
    parsed = _Tables()
    parsed.feed(text)
    assert parsed.h3 == ["gender", "region"]
    model, metrics, gender, region = parsed.tables
    assert metrics == [["roc_auc", "0.7000"]]
    assert gender[0] == ["gender", "rows", "selection rate", "TPR", "FPR", "AUC"]
    by_gender = {r[0]: r[1:] for r in gender[1:]}
    assert set(by_gender) == {"f", "m"}
    assert sum(int(r[0]) for r in by_gender.values()) == n
    f = fairness["gender"]["by_group"]["f"]
    assert by_gender["f"][1:4] == [f"{f['selection_rate']:.4f}", f"{f['tpr']:.4f}", f"{f['fpr']:.4f}"]
    by_region = {r[0]: r[1:] for r in region[1:]}
    assert by_region["tiny"][0] == "5" and by_region["tiny"][4] == "n/a"
    assert f"{fairness['region']['equalized_odds_difference']:.4f}" in text


def test_a_report_without_sensitive_attributes_says_fairness_was_skipped(tmp_path):
    fairness, plot = fairness_report(
        np.array([0, 1]), np.array([0.2, 0.8]), 0.5, pd.DataFrame({"gender": [None, None]}), tmp_path
    )
    assert plot is None
    text = html_report("m", {}, {}, {}, tmp_path / "r.html", fairness=fairness).read_text()
    assert "<h2>Fairness</h2><p>skipped: no sensitive attribute present</p>" in text
