"""Model registry: the promotion gate and alias moves.

promotion.py  Policy, ModelEval, Decision, decide_promotion (pure: no I/O)
evaluate.py   re-score registered versions on the challenger's held-out rows (AUC, ECE,
              fairness gaps, single-row p99 latency)
aliases.py    apply a decision / roll back: MLflow aliases champion, challenger,
              previous_champion, and the append-only registry.alias_history Delta table

Layer 8 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

__all__: list[str] = []
