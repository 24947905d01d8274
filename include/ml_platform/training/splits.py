"""Time-based splits of a training set: by cutoff, never by random rows across cutoffs.

With cutoffs c1 < c2 < ... < cn: the latest (fully labelled) cutoff is the test set, the one
before it validation, the rest training. The same customer appears at every cutoff, and rows of
one cutoff share the future that defines their labels, so a random row split would leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_platform.contracts import SENSITIVE
from ml_platform.errors import MlPlatformError
from ml_platform.model.encoding import FeatureEncoder


@dataclass(frozen=True)
class Split:
    name: str
    cutoffs: list[Any]
    x: np.ndarray
    y: np.ndarray
    frame: Any  # the rows (pandas), with ids and sensitive attributes, for reports
    encoder: Any = None  # the FeatureEncoder fitted on the training split (shared by all three)


def split_by_cutoff(
    df: Any, feature_names: Sequence[str], label: str = "churned", cutoff_col: str = "cutoff_date"
) -> dict[str, Split]:
    """train / validation / test by cutoff (see module doc); at least three cutoffs are needed.

    Each split's rows come sorted by every column (cutoff first): a Delta table has no row order,
    and either engine may write the same rows in another order, which would change what a seeded
    fit samples and so the model."""
    df = df.sort_values([cutoff_col, *(c for c in df.columns if c != cutoff_col)], kind="stable", ignore_index=True)
    cutoffs = sorted(df[cutoff_col].unique())
    if len(cutoffs) < 3:
        raise MlPlatformError(
            f"need at least 3 cutoffs (train, validation, test); got {len(cutoffs)}: {', '.join(map(str, cutoffs))}"
        )
    leaked = sorted(set(feature_names) & set(SENSITIVE))
    if leaked:
        raise MlPlatformError(f"sensitive attribute(s) {leaked} are not model features")
    parts = {"train": cutoffs[:-2], "validation": [cutoffs[-2]], "test": [cutoffs[-1]]}
    encoder = FeatureEncoder.fit(df[df[cutoff_col].isin(parts["train"])], feature_names)
    out = {}
    for name, cs in parts.items():
        rows = df[df[cutoff_col].isin(cs)]
        outcomes = sorted(rows[label].astype(int).unique())
        if len(outcomes) < 2:  # no AUC to tune, select or report by
            raise MlPlatformError(
                f"the {name} split (cutoff {', '.join(map(str, cs))}) holds one outcome only "
                f"({len(rows)} rows, {label}={outcomes[0] if outcomes else '-'}): choose cutoffs whose label window saw both"
            )
        out[name] = Split(
            name, list(cs), encoder.transform(rows), rows[label].astype("float64").to_numpy(), rows, encoder
        )
    return out
