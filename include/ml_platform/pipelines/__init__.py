"""The flows that span stages, one function each, used by the CLI, the Spark job entry points and
the DAGs: the data plane (`data_plane`: landing -> bronze -> gate -> silver -> features), the
lineage-aware lake maintenance (`lake_maintenance`) and the one-command backtest on a user's file
(`backtest`) (docs/ARCHITECTURE.md)."""

__all__: list[str] = []
