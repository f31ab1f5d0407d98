# Two commands on a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
CHROMIUM ?= /usr/bin/chromium

# Services used by `make test`: the ones listening on these ports, or throwaway instances
# that scripts/test_services.sh starts under var/ and stops afterwards.
TEST_PG_PORT ?= 5432
TEST_REDIS_PORT ?= 6379
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:$(TEST_PG_PORT)/test
TEST_BROKER_URL ?= redis://127.0.0.1:$(TEST_REDIS_PORT)/15
# pytest-xdist processes for the PostgreSQL run (each with its own database and Redis db).
TEST_WORKERS ?= 2

# Demo shop: size, seed and the last day of its history (defaults to today).
DEMO_CUSTOMERS ?= 5000
DEMO_DAYS ?= 730
DEMO_SEED ?= 42
DEMO_END ?= $(shell date -u +%F)
DEMO_SERVE ?= 1
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000

.PHONY: install demo serve test test-pg test-smoke lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@# The browser tests drive Debian's Chromium (never a browser download).
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq chromium; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet ".[dev]"
	touch $@

# Local settings (git-ignored): a generated SECRET_KEY and DEBUG=1, read by every
# manage.py command, worker and make target; variables in the environment win over it.
.env:
	@printf '# Local settings written by `make demo`; the environment overrides them.\nDEBUG=1\nSECRET_KEY=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" >$@
	@echo "Wrote local settings to .env (DEBUG=1 and a generated SECRET_KEY)"

demo: install .env
	$(MANAGE) migrate --noinput
	$(MANAGE) generate_shop --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) \
		--seed $(DEMO_SEED) --end $(DEMO_END) --if-empty
	$(MANAGE) create_demo_users
	$(MANAGE) train --as-of $(DEMO_END)
	$(MANAGE) create_demo_campaigns --as-of $(DEMO_END)
	$(MANAGE) run_pipeline --as-of $(DEMO_END)
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then $(MANAGE) link_code agent; \
	else echo "Chat bot: off (set TELEGRAM_BOT_TOKEN to get alert cards in Telegram)"; fi
	@if [ "$(DEMO_SERVE)" = "1" ]; then $(MAKE) --no-print-directory serve; \
	else echo "Demo ready (DEMO_SERVE=0: not serving). Start it with: make serve"; fi

# The web app with a real Celery worker and beat on the configured broker (the embedded
# filesystem broker by default); Ctrl-C stops all three.
serve: install .env
	@echo "Console: http://$(DEMO_HOST):$(DEMO_PORT)/console/  (logins printed by create_demo_users)"
	@trap 'kill 0' EXIT INT TERM; \
	$(BIN)/celery -A retention worker --loglevel INFO --concurrency 2 & \
	$(BIN)/celery -A retention beat --loglevel INFO & \
	if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then $(MANAGE) runbot & fi; \
	$(MANAGE) runserver $(DEMO_HOST):$(DEMO_PORT)

test: install
	@scripts/test_services.sh up $(TEST_PG_PORT) $(TEST_REDIS_PORT)
	@status=0; $(MAKE) --no-print-directory test-pg test-smoke || status=$$?; \
		scripts/test_services.sh down; exit $$status

test-pg:
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(BIN)/pytest -q -n $(TEST_WORKERS)

# The smoke subset on the embedded default, so it cannot rot.
test-smoke:
	DATABASE_URL=sqlite:///$(CURDIR)/var/smoke.sqlite3 CELERY_BROKER_URL=filesystem:// \
		$(BIN)/pytest -q -m smoke -p no:cacheprovider

# lint-imports checks the import contracts in pyproject.toml (layers, no circles);
# tests/test_architecture.py runs the same check inside `make test`, so CI fails on them.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks print their numbers; each uses its own PostgreSQL database.
BENCH_DBS := bench bench_gen bench_quality bench_score bench_txlog bench_loop bench_bot bench_train \
	bench_robustness

bench: install
	@for db in $(BENCH_DBS); do \
		psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$$db'" \
			| grep -q 1 || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $$db"; done
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/transaction_log.py
	$(BIN)/python bench/score.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/closed_loop.py
	$(BIN)/python bench/bot.py
	$(BIN)/python bench/robustness.py  # last: it exits non-zero when a shop fails its acceptance

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .import_linter_cache
