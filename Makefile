# The two commands: `make run` (set up, then start the local stack) and `make test`.
# Both work on a fresh Debian machine: they create .venv, install the pinned Python
# packages, and install the system packages (InfluxDB; Chromium for tests) when missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
PLOTLY_BUNDLE := dashboard/warroom/assets/vendor/plotly-warroom-geo.min.js
PYTEST_ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends

.PHONY: run test setup test-setup system-runtime system-test web-assets quick check bench clean

run: setup
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web-assets; \
	  else echo "npm not found: the war-room loads the full plotly.js (make web-assets builds the small one)"; fi
	$(BIN)/orderradar up

test: test-setup
	$(BIN)/pytest $(PYTEST_ARGS)

# Everything except slow fault-injection and load tests (they still run in `make test`).
quick: test-setup
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/orderradar bench

setup: $(STAMP) system-runtime

test-setup: setup system-test web-assets

# The war-room's partial plotly.js bundles and axe-core for the browser tests, from the npm
# registry as pinned by package-lock.json (Debian's npm when missing); nothing downloads at run time.
web-assets: $(PLOTLY_BUNDLE)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory apt-packages PACKAGES=npm
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

$(PLOTLY_BUNDLE): $(NODE_STAMP) dashboard/warroom/bundle/build.js
	node dashboard/warroom/bundle/build.js

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

# InfluxDB 1.x serves the 1.x HTTP API the project uses.
system-runtime:
	@command -v influxd >/dev/null 2>&1 || $(MAKE) --no-print-directory apt-packages PACKAGES=influxdb

# Headless Chromium and its driver for the browser tests, and CJK fonts so Chinese
# renders in screenshots (Debian's packages).
system-test:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
	  && fc-list 2>/dev/null | grep -qi "noto.*cjk" \
	  || $(MAKE) --no-print-directory apt-packages PACKAGES="chromium chromium-driver fonts-noto-cjk"

apt-packages:
	@if command -v apt-get >/dev/null 2>&1; then \
	  echo "installing system packages: $(PACKAGES)"; \
	  $(SUDO) apt-get update -q && $(APT_INSTALL) $(PACKAGES); \
	else \
	  echo "Please install: $(PACKAGES) (InfluxDB 1.8+ and Chromium with chromedriver), or run the"; \
	  echo "production stack with: docker compose up"; exit 1; \
	fi

# Formatting, lint and strict typing of every package (settings in pyproject.toml and setup.cfg).
check: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy --strict stream alerting geo config dashboard orderradar

clean:
	rm -rf $(VENV) .orderradar test-artifacts node_modules dashboard/warroom/assets/vendor
