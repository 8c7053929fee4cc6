# Every target works from nothing but Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(wildcard proto/taiinet/v1/*.proto)
# The browser peer (js/): node_modules comes from the lockfile, reinstalled only when it changes.
NODE_STAMP := js/node_modules/.installed-stamp

.PHONY: venv test lint js-test js-build browser-test proto conformance demo demo-browser bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(NODE_STAMP): js/package-lock.json js/package.json
	cd js && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

proto: $(STAMP) $(NODE_STAMP)
	$(BIN)/python tools/protogen.py
	cd js && npm run --silent proto

conformance: $(STAMP)
	$(BIN)/python tools/conformance.py

lint: $(STAMP)
	$(BIN)/ruff check taiinet tests bench tools
	$(BIN)/mypy

js-test: $(NODE_STAMP)
	cd js && npm run --silent typecheck && npm run --silent proto:check && npm test --silent

# The browser peer in headless Chromium (skipped when /usr/bin/chromium is missing, outside CI).
browser-test: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest tests/browser

test: lint js-test
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/taiinet demo

js-build: $(NODE_STAMP)
	cd js && npm run --silent build

# The browser demo: signallers, Python peers, a TURN relay if coturn is installed, and the
# page on http://127.0.0.1:8080/ (HTTP_PORT=0 for any free port); Ctrl-C stops it.
HTTP_PORT ?= 8080
demo-browser: $(STAMP) js-build
	$(BIN)/taiinet demo --browser --http-port $(HTTP_PORT)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist js/node_modules js/dist js/.test-build
