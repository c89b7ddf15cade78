# Harpoon: `make run` builds and starts the service; `make test` sets up and runs everything.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
IMAGE ?= harpoon:latest

.PHONY: run run-light build FORCE test setup lint unit pg mlx e2e mcp browser dashboard-screenshot cluster fuzz router-check router python-fusion bench bench-router bench-health bench-gateway bench-tokens bench-deployments bench-fusion bench-hosted docker clean

# Offline Hugging Face settings for everything that touches mlx-lm.
HF_ENV := HF_HUB_OFFLINE=1 HF_HUB_CACHE=$(CURDIR)/target/hf-cache
# Tiny models with short replies for fuzzing the inference routes.
FUZZ_MODELS := $(foreach m,GEMMA:gemma3_text QWEN:qwen3,HARPOON__MODELS__$(word 1,$(subst :, ,$(m)))__REPO=$(CURDIR)/target/test-models/$(word 2,$(subst :, ,$(m))) HARPOON__MODELS__$(word 1,$(subst :, ,$(m)))__MAX_NEW_TOKENS=4 HARPOON__MODELS__$(word 1,$(subst :, ,$(m)))__CONTEXT_LIMIT=2048)
# The service with the in-process MLX engine, as `make run` builds it (release, feature pymlx).
PYMLX_BIN := target/service-pymlx

# Training data of the router: the shared labelled set and our own additions.
ROUTER_DATA := --data ../shared/data/router/train.jsonl --data data/router/extra.jsonl --data data/router/conversations.jsonl
# Rows kept out of training (multi-turn and weak spots), scored by `make router`.
ROUTER_EVAL := --eval data/router/heldout.jsonl

## Set up the MLX engine's Python (the pinned venv `make test` uses), build the service in release
## with it and start it: the default models load from the Hugging Face cache or are downloaded on
## first use (config: defaults < ~/.orchestrator/config.yaml < env).
run: $(PYMLX_BIN)
	./$(PYMLX_BIN)

## The lightweight build (cargo's default features, as in the Docker image): no Python, no
## in-process engine; `openai` upstreams and `hosted_ai` pools only.
run-light:
	$(CARGO) build --release --locked -p service
	./target/release/service

## The binary `make run` starts, which the end-to-end tests and the fuzzer drive too. Cargo decides
## whether anything needs rebuilding; the copy keeps it apart from `run-light`'s build.
$(PYMLX_BIN): FORCE
	./scripts/setup-python.sh
	$(CARGO) build --release --locked -p service --features pymlx
	cp target/release/service $(PYMLX_BIN)

FORCE:

build:
	$(CARGO) build --release --locked -p service

## Install what the tests need, then lint and run the whole suite.
test: setup lint unit pg router-check python-fusion mlx e2e mcp browser cluster fuzz
# A one-off full run gains nothing from incremental caches, which would cost
# gigabytes of disk (prerequisites inherit this).
test: export CARGO_INCREMENTAL = 0

## Everything the suite needs on a fresh machine.
setup:
	./scripts/setup-test-env.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy -p orchestrator -p service --all-targets --locked --features orchestrator/pymlx,service/pymlx -- -D warnings
	@echo "lint: no import circle between the service's modules"
	$(CARGO) test --locked -p service --test module_graph

unit:
	$(CARGO) test --workspace --locked

## MCP end to end: the real binary driven by the official MCP Python SDK (HTTP and stdio).
mcp:
	$(CARGO) build --locked -p service -p hostedai-emulator
	cd tests/mcp && HARPOON_SERVICE_BIN=$(CURDIR)/target/debug/service ../../.venv/bin/python -m pytest -q

## Three replicas on one throwaway PostgreSQL (tests/cluster): a rolling restart under load
## behind HAProxy, revocation heard by all, shared quotas in a redis-server of the test's own,
## one hosted·ai owner (the emulator) and its takeover, strike leases, MCP across replicas.
cluster:
	$(CARGO) build --locked -p service -p hostedai-emulator
	./scripts/with-postgres.sh -- sh -c 'cd tests/cluster && HARPOON_SERVICE_BIN=$(CURDIR)/target/debug/service ../../.venv/bin/python -m pytest -q'

## The dashboard in a real browser: Debian's Chromium driven by playwright-core
## (tests/browser; `make setup` installs both). Screenshots go to target/browser/.
browser:
	$(CARGO) build --locked -p service
	cd tests/browser && HARPOON_SERVICE_BIN=$(CURDIR)/target/debug/service node --test dashboard.test.mjs signin.test.mjs

## Regenerates docs/dashboard.png (shown in docs/observability.md) from the browser test.
dashboard-screenshot:
	$(CARGO) build --locked -p service
	cd tests/browser && HARPOON_SERVICE_BIN=$(CURDIR)/target/debug/service \
	  DASHBOARD_DOCS_PNG=$(CURDIR)/docs/dashboard.png node --test dashboard.test.mjs

## Schema-driven fuzzing of the HTTP API from its OpenAPI document (schemathesis):
## no undocumented 5xx, no response that breaks the document, 1,000+ requests.
fuzz: $(PYMLX_BIN)
	$(CARGO) build --locked -p service
	./scripts/fuzz-api.sh target/debug/service
	@echo "fuzz: again with the binary \`make run\` builds, its mlx engine serving the tiny models"
	$(HF_ENV) HARPOON_FUZZ_SERVICE_ENV="$(FUZZ_MODELS)" ./scripts/fuzz-api.sh $(PYMLX_BIN)

## The storage tests (service and bridge) again on a real, throwaway PostgreSQL.
pg:
	./scripts/with-postgres.sh -- sh -c 'HARPOON_TEST_DATABASE_URL="$$DATABASE_URL" $(CARGO) test --locked -p service --test storage_backends \
	  && HARPOON_TEST_DATABASE_URL="$$DATABASE_URL" $(CARGO) test --locked -p harpoon_bridge --test covenants --test strikes -- --test-threads=1'

## The mlx engine on the tiny test models (needs `make setup`).
mlx:
	$(HF_ENV) $(CARGO) test --locked -p orchestrator --features pymlx --test mlx_engine

## The OpenAI schema fixture's own tests, then the real binary (with MLX) end to end, driven by
## the official openai client and litellm, every answer checked against OpenAI's schemas.
e2e: $(PYMLX_BIN)
	.venv/bin/python -m pytest -q tests/fixtures
	cd tests/e2e && HARPOON_SERVICE_BIN=$(CURDIR)/$(PYMLX_BIN) ../../.venv/bin/python -m pytest -q

## The harpoon_core Python module: built into the project venv with maturin, then its tests.
python-fusion:
	VIRTUAL_ENV=$(CURDIR)/.venv .venv/bin/maturin develop --locked -m crates/harpoon-core/Cargo.toml
	.venv/bin/python -m pytest -q crates/harpoon-core/python-tests

## The embedded router artefact is exactly what training produces from the committed data.
router-check:
	$(CARGO) run --release --locked -q -p orchestrator --bin train-router -- $(ROUTER_DATA) --check

## Retrain the router and rewrite the embedded artefact (crates/orchestrator/assets/router.bin).
router:
	$(CARGO) run --release --locked -p orchestrator --bin train-router -- $(ROUTER_DATA) $(ROUTER_EVAL)

## Benchmarks; figures go to docs/performance.md with the command behind each.
bench: bench-router bench-health bench-gateway bench-tokens bench-deployments bench-fusion bench-hosted

## The router's classification, and preparing a prompt (its tokenizing) by size (after `make setup`).
bench-router:
	$(CARGO) bench --locked -p orchestrator --bench classify
	$(CARGO) bench --locked -p orchestrator --bench prepare

bench-health:
	./scripts/bench-health.sh

## Added latency through Harpoon to a static upstream, closed-loop and at a fixed offered load;
## then closed-loop with a stock nginx (worker_processes auto) and, as A2, the service's default
## log level and a model tokenizer (the tiny test model's: after `make setup`; docs/performance.md, "Session 6").
bench-gateway:
	./scripts/bench-gateway.sh 3 5 32
	./scripts/bench-gateway.sh 9 5 32 2000
	ARRIVALS=fixed ./scripts/bench-gateway.sh 9 5 32 2000
	NGINX_WORKERS=auto TOKENIZER=A2 HARPOON_ENV_ALT=RUST_LOG=info ./scripts/bench-gateway.sh 3 5 32

## Tokens/s through the service (mlx engine) against mlx-lm called directly, and with a
## JSON schema (constrained decoding's cost), interleaved (after `make setup`).
bench-tokens: $(PYMLX_BIN)
	$(HF_ENV) .venv/bin/python scripts/bench-tokens.py --binary $(PYMLX_BIN) --rounds 7 --max-tokens 200

## A burst on one model: the in-process primary alone against the same with an `mlx_lm.server`
## overflow, interleaved (p50/p99 latency, throughput, the overflow's share).
bench-deployments: $(PYMLX_BIN)
	$(HF_ENV) .venv/bin/python scripts/bench-deployments.py --binary $(PYMLX_BIN) --rounds 6 --burst 12 --max-tokens 48

## Fusion: criterion, then the Rust sources under ~/.cargo/registry/src scored on 1 and 2 threads.
bench-fusion:
	$(CARGO) bench --locked -p harpoon-core --bench fusion
	$(CARGO) run --release --locked -q -p harpoon-core --example fusion-throughput

## hosted·ai (against the emulator): latency added on the warm path over calling the pod
## directly, and cold-start time to first token with emulator delays at zero (after `make setup`).
bench-hosted:
	$(HF_ENV) $(CARGO) test --release --locked -p orchestrator --test hosted_ai -- --ignored --nocapture bench_
	$(HF_ENV) $(CARGO) test --release --locked -p service --test hosted_ai_bench -- --ignored --nocapture --test-threads=1

## Build the container image; needs a running Docker engine.
docker:
	@docker info >/dev/null 2>&1 || { echo "make docker: no Docker engine is reachable here (docker info failed)" >&2; exit 2; }
	docker build -t $(IMAGE) .

clean:
	$(CARGO) clean
