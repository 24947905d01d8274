"""Raw data contracts: the columns a transaction or customer file must (or may) carry.

Enforced by ingestion (`ml_platform.data.ingest`): a missing required column, or a column
whose values cannot be read as the contract type at all, rejects the file before anything is
written. Bad individual rows are the validation gate's job. Also the customers' sensitive
attributes (`SENSITIVE`): read for fairness reports and slices, never used as model features.
The lowest layer of the package (docs/ARCHITECTURE.md): it imports nothing of the platform.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS = ("online", "mobile", "store")
#: Customer attributes kept out of every feature set; fairness is measured across them.
SENSITIVE = ("gender", "age_band", "region")


@dataclass(frozen=True)
class Column:
    name: str
    spark_type: str  # Spark SQL type name used for the cast
    required: bool
    description: str


@dataclass(frozen=True)
class Contract:
    name: str
    columns: tuple[Column, ...]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


TRANSACTIONS = Contract(
    "transactions",
    (
        Column("customer_id", "string", True, "customer key"),
        Column("transaction_id", "string", True, "unique id of the transaction"),
        Column("transaction_ts", "timestamp", True, "when it happened (UTC)"),
        Column("amount", "double", True, "amount paid; refunds are not transactions"),
        Column("quantity", "int", False, "items bought"),
        Column("product_category", "string", False, "category of the main item"),
        Column("channel", "string", False, "online | mobile | store"),
    ),
)

CUSTOMERS = Contract(
    "customers",
    (
        Column("customer_id", "string", True, "customer key"),
        Column("signup_date", "date", False, "date of sign-up"),
        Column("region", "string", False, "sales region (sensitive attribute for fairness checks)"),
        Column("age_band", "string", False, "age band (sensitive attribute)"),
        Column("gender", "string", False, "gender (sensitive attribute)"),
    ),
)

CONTRACTS = {c.name: c for c in (TRANSACTIONS, CUSTOMERS)}
