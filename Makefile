# Harpoon: `make run` builds and starts the service; `make test` sets up and runs everything.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
IMAGE ?= harpoon:latest

.PHONY: run build test setup lint unit router-check router bench docker clean

# Training data of the router: the shared labelled set and our own additions.
ROUTER_DATA := --data ../shared/data/router/train.jsonl --data data/router/extra.jsonl

## Build in release and start the service (config: defaults < ~/.orchestrator/config.yaml < env).
run:
	$(CARGO) build --release --locked -p service
	./target/release/service

build:
	$(CARGO) build --release --locked -p service

## Install what the tests need, then lint and run the whole suite.
test: setup lint unit router-check

## Everything the suite needs on a fresh machine.
setup:
	./scripts/setup-test-env.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

## The embedded router artefact is exactly what training produces from the committed data.
router-check:
	$(CARGO) run --release --locked -q -p orchestrator --bin train-router -- $(ROUTER_DATA) --check

## Retrain the router and rewrite the embedded artefact (crates/orchestrator/assets/router.bin).
router:
	$(CARGO) run --release --locked -p orchestrator --bin train-router -- $(ROUTER_DATA)

## Benchmarks: router classification (criterion), then /health under wrk load; figures go to docs/performance.md.
bench:
	$(CARGO) bench --locked -p orchestrator --bench classify
	./scripts/bench-health.sh

## Build the container image; needs a running Docker engine.
docker:
	@docker info >/dev/null 2>&1 || { echo "make docker: no Docker engine is reachable here (docker info failed)" >&2; exit 2; }
	docker build -t $(IMAGE) .

clean:
	$(CARGO) clean
