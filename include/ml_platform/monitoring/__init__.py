"""Monitoring: the retrain policy (pure), drift detection (drift environment), late labels,
realised performance, the weekly steps of the `monitoring` DAG (`weekly`), the exactly-once
hand-off to training (`handoff`) and alerts.

Layer 9 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

__all__: list[str] = []
