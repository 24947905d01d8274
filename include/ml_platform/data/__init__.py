"""Raw data contracts, the synthetic generator and bring-your-own-file ingestion.

Layer 3 of the package layers in docs/ARCHITECTURE.md (held by import-linter).
"""

from ml_platform.contracts import CUSTOMERS, TRANSACTIONS, Column, Contract

__all__ = ["CUSTOMERS", "TRANSACTIONS", "Column", "Contract"]
