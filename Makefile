# gasguard — the two set-up commands are `make sim` and `make test`.
# Both create .venv and install what they need; nothing here needs root except
# installing the mosquitto broker for the integration tests (only when missing).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GASGUARD := $(VENV)/bin/gasguard
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: all venv test sim bench flash package broker clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
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

test: $(STAMP) broker
	$(PY) -m pytest -q

sim: $(STAMP)
	$(GASGUARD) sim $(SIM_ARGS)

bench: $(STAMP)
	$(PY) -m gasguard_tools.bench

flash: $(STAMP)
	$(GASGUARD) flash --port $(PORT) --board $(BOARD) $(FLASH_ARGS)

package: $(STAMP)
	$(GASGUARD) package

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build
