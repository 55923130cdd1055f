# gasguard — the two set-up commands are `make sim` and `make test`.
# Both create .venv and install what they need; nothing here needs root except
# installing the mosquitto broker for the integration tests (only when missing).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GASGUARD := $(VENV)/bin/gasguard
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
# exact versions for CI and make (pyproject.toml has ranges); docs/dependencies.md
PIP_INSTALL := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: all venv test sim bench flash package broker docdeps postgres wheel clean

all: test

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[dev,docs]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

# mosquitto is a system package (no pip package provides the broker). Installed only
# when missing and only as root; without it the broker tests say so and skip, except
# under CI (GASGUARD_REQUIRE_BROKER=1), where a missing broker is a failure.
broker:
	@if (command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto) \
		&& command -v openssl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing mosquitto and openssl (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto openssl >/dev/null; \
	else echo "note: mosquitto/openssl missing; broker integration tests will be skipped"; fi

# headless chromium renders the reports and certificates to PDF/PNG; pdftotext
# (poppler-utils) reads the PDFs back in the tests; a CJK font draws the Chinese text
# (docs/dependencies.md). Installed when missing and only as root, like the broker.
docdeps:
	@if command -v chromium >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 \
		&& fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium, poppler-utils and fonts-wqy-microhei (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			poppler-utils fonts-wqy-microhei >/dev/null; \
	else echo "note: chromium/pdftotext/CJK font missing; the PDF tests will be skipped"; fi

# PostgreSQL server binaries for the notify tests (a real server the tests start themselves,
# as a non-root user). Installed when missing and only as root; without them those tests
# skip, except under CI (CI=true), where that is a failure.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing postgresql (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "note: postgresql missing; the notify PostgreSQL tests will be skipped"; fi

test: $(STAMP) broker docdeps postgres
	$(PY) -m pytest -q

sim: $(STAMP)
	$(GASGUARD) sim $(SIM_ARGS)

bench: $(STAMP)
	$(PY) -m gasguard_tools.bench

flash: $(STAMP)
	$(GASGUARD) flash --port $(PORT) --board $(BOARD) $(FLASH_ARGS)

package: $(STAMP)
	$(GASGUARD) package

# the wheel (and sdist) users install: firmware, boards, schemas and scenarios inside
# (setup.py); host_tests/test_tools_install.py installs it into a fresh venv and runs it
wheel: $(STAMP)
	$(PY) -m pip wheel --no-deps -q -w dist .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist
