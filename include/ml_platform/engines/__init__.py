"""Engines: the interface every data operation is written against (`base`), the rule that picks
one per job (`choice`) and the frame of a `spark_jobs/` entry point that runs on it (`jobs`).

Layer 3 of the package layers in docs/ARCHITECTURE.md: above `lake`, below every package whose
operations the engines run.
"""

from ml_platform.engines.base import ENGINES, OPERATIONS, EmbeddedEngine, Engine, EngineMissing, SparkEngine, operation
from ml_platform.engines.choice import KINDS, choose_engine, input_bytes

__all__ = [
    "ENGINES",
    "KINDS",
    "OPERATIONS",
    "EmbeddedEngine",
    "Engine",
    "EngineMissing",
    "SparkEngine",
    "choose_engine",
    "input_bytes",
    "operation",
]
