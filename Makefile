# The two commands a newcomer needs: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
NODE_STAMP := frontend/node_modules/.installed

.PHONY: run cluster test install lint bench clean

run: $(STAMP) $(NODE_STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runsip

# Scale-out on one machine: 2 Daphne nodes (HTTP 127.0.0.1:8001, :8002) and a sipworker
# (SIP 127.0.0.1:5060) on the local PostgreSQL (database sipws) and Redis.
cluster: $(STAMP)
	$(PY) tools/cluster.py

test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,scaleout]'
	rm -f $(VENV)/.installed-* && touch $@

$(NODE_STAMP): frontend/package.json frontend/package-lock.json frontend/sipjs.entry.js
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Installs sipp, wrk and Kamailio when missing (apt, as tools/install-system-deps.sh does for
# the tests); Kamailio runs side by side with our server. See docs/benchmarks.md.
bench: $(STAMP) $(NODE_STAMP)
	bash tools/install-system-deps.sh bench
	$(PY) bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) frontend/node_modules
