# The two commands: `make demo` and `make test` (README.md). Everything else is a helper.
SHELL := /bin/bash
.DEFAULT_GOAL := help
TIERS ?= unit spark dags integration e2e cluster ui azure faults streaming
QUICK ?= 0
LAKE ?= local
STREAMING ?= 0

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

setup:  ## build both Python environments and fetch the Delta jars (cached; seconds when warm)
	@bash scripts/bootstrap.sh

demo: setup  ## the end-to-end demo (scripts/demo.sh); QUICK=1: 4 loop weeks, fewer steps; LAKE=azurite: on Azurite; STREAMING=1: + events
	@QUICK=$(QUICK) LAKE=$(LAKE) STREAMING=$(STREAMING) bash scripts/demo.sh

test: setup  ## set up, start PostgreSQL/Redis, run every tier (two lanes at once): host speed, wall times, projection
	@TIERS="$(TIERS)" bash scripts/test.sh

check: setup  ## the developer's loop: the unit tier, then the spark and dags tests of what changed (minutes)
	@bash scripts/check.sh

stop:  ## stop every process any demo variant started (PostgreSQL and Redis too, when it started them)
	@bash scripts/stop.sh

clean:  ## after asking: stop everything, remove the platform home and the per-user caches (YES=1: no question)
	@bash scripts/clean.sh

benchmark: setup  ## feature snapshot: Spark job vs DuckDB (ROWS=1000000 by default)
	@source scripts/env.sh && python benchmarks/feature_snapshot.py --rows $${ROWS:-1000000}

.PHONY: help setup demo test check stop clean benchmark
