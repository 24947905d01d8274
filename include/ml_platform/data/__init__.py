"""Raw data contracts, the synthetic generator and bring-your-own-file ingestion."""

from ml_platform.contracts import CUSTOMERS, TRANSACTIONS, Column, Contract

__all__ = ["CUSTOMERS", "TRANSACTIONS", "Column", "Contract"]
