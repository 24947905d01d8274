"""The engine interface: what a job needs from an engine, and the two engines that offer it.

An `Engine` is chosen once per job (`engines.choice.choose_engine`, with its reason) and passed
down. Work that either engine can do is an *operation*: a function declared with `@operation`
whose first argument is the engine, with one implementation per engine registered beside it
(`@op.register(SparkEngine)`, `@op.register(EmbeddedEngine)`), dispatched on the engine's class.
No module branches on an engine's name; `OPERATIONS` lists every operation, and the spark tier's
parity suite runs each on both engines and compares the results.

    from ml_platform.engines import EmbeddedEngine, SparkEngine, operation

    @operation
    def row_count(engine: Engine, path: str) -> int:
        "Rows of the Delta table at `path`."

    @row_count.register(SparkEngine)
    def _(engine: SparkEngine, path: str) -> int:
        return engine.spark.read.format("delta").load(path).count()

    @row_count.register(EmbeddedEngine)
    def _(engine: EmbeddedEngine, path: str) -> int:
        ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ml_platform.errors import MlPlatformError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

R = TypeVar("R")


class Engine:
    """An engine chosen for a job, with the reason it was chosen (printed, logged, kept in the
    job's result and the lineage)."""

    name: ClassVar[str]
    starts_jvm: ClassVar[bool]  # whether running it needs a JVM (a launcher decides spark-submit or not)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def to_json(self) -> dict[str, str]:
        return {"engine": self.name, "reason": self.reason}

    def start(self, app: str) -> SparkSession | None:
        """Whatever the engine runs on, started for the job `app`: the Spark session, or None."""
        return None

    def stop(self) -> None:
        """Stop what `start` started."""

    def using(self, other: Engine | None) -> Engine:
        """This engine, sharing what `other` (another job step's engine) has already started."""
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Engine) and (self.name, self.reason) == (other.name, other.reason)

    def __hash__(self) -> int:
        return hash((self.name, self.reason))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r})"


class EmbeddedEngine(Engine):
    """DuckDB over the lake's Parquet files and the platform's Delta log reader and writers, in the
    calling process: no JVM, no session."""

    name = "embedded"
    starts_jvm = False


class SparkEngine(Engine):
    """Spark (local, a standalone cluster or a Spark Connect server) with Delta Lake. The session is
    the one given, else built on first use (`lake.spark.get_spark`)."""

    name = "spark"
    starts_jvm = True

    def __init__(self, reason: str = "a SparkSession given by the caller", spark: SparkSession | None = None) -> None:
        super().__init__(reason)
        self._spark = spark
        self._app = "ml-platform"
        self._owned = False

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            from ml_platform.lake.spark import get_spark

            self._spark = get_spark(self._app)
            self._owned = True
        return self._spark

    def start(self, app: str) -> SparkSession:
        self._app = app
        return self.spark

    def stop(self) -> None:
        if self._spark is not None and self._owned:
            self._spark.stop()
            self._spark, self._owned = None, False

    def using(self, other: Engine | None) -> SparkEngine:
        """This engine on `other`'s session when it is a Spark engine with one (one JVM per job)."""
        if isinstance(other, SparkEngine) and other._spark is not None and self._spark is None:
            self._spark = other._spark
        return self


class EngineMissing(MlPlatformError, NotImplementedError):
    """An operation was called with an engine it has no implementation for."""


OPERATIONS: dict[str, Any] = {}
"""Every declared operation by name (`<package>.<module>.<function>`), once its module is imported."""

ENGINES: tuple[type[Engine], ...] = (SparkEngine, EmbeddedEngine)


def operation(fn: Callable[..., R]) -> functools._SingleDispatchCallable[R]:
    """Declare `fn(engine, ...)` an engine operation: its signature and docstring are the contract,
    its body is not run; each engine registers an implementation with `.register(<Engine class>)`."""
    name = f"{fn.__module__.removeprefix('ml_platform.')}.{fn.__name__}"

    def missing(engine: Engine, *args: Any, **kwargs: Any) -> Any:
        raise EngineMissing(f"{name} has no implementation for {engine!r}")

    generic = functools.singledispatch(missing)
    functools.update_wrapper(generic, fn)
    OPERATIONS[name] = generic
    return generic


def implemented_by(op: Any) -> list[str]:
    """The names of the engines that implement operation `op`."""
    return [e.name for e in ENGINES if op.dispatch(e) is not op.registry[object]]
