"""Great Expectations gate for bronze -> silver, with rules defined once as code.

Layer 3 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

from ml_platform.validation.gate import GateOutcome, run_gate
from ml_platform.validation.rules import ROW_RULES, RowRule, RuleContext

__all__ = ["ROW_RULES", "GateOutcome", "RowRule", "RuleContext", "run_gate"]
