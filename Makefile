# Harpoon: `make run` builds and starts the service; `make test` sets up and runs everything.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
IMAGE ?= harpoon:latest

.PHONY: run build test setup lint unit bench docker clean

## Build in release and start the service (config: defaults < ~/.orchestrator/config.yaml < env).
run:
	$(CARGO) build --release --locked -p service
	./target/release/service

build:
	$(CARGO) build --release --locked -p service

## Install what the tests need, then lint and run the whole suite.
test: setup lint unit

## Everything the suite needs on a fresh machine.
setup:
	./scripts/setup-test-env.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

## Load benchmarks (wrk against a release build on loopback); figures go to docs/performance.md.
bench:
	./scripts/bench-health.sh

## Build the container image; needs a running Docker engine.
docker:
	@docker info >/dev/null 2>&1 || { echo "make docker: no Docker engine is reachable here (docker info failed)" >&2; exit 2; }
	docker build -t $(IMAGE) .

clean:
	$(CARGO) clean
