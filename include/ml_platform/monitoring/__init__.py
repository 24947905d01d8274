"""Monitoring: the retrain policy (pure), drift detection (drift environment), late labels and performance."""
