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

.PHONY: all venv test sim bench flash package broker docdeps postgres mbpoll wheel clean esp32-micropython

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

# mbpoll (Debian, built on libmodbus) is the second real Modbus master the RS-485 tests read
# the virtual devices with (docs/modbus.md). Installed when missing and only as root; without
# it those tests skip, except under CI (CI=true), where that is a failure.
mbpoll:
	@if command -v mbpoll >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing mbpoll (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mbpoll >/dev/null; \
	else echo "note: mbpoll missing; the mbpoll Modbus tests will be skipped"; fi

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

# The ESP32-like interpreter (32-bit MicroPython v1.28.0 unix port with the ESP32's object
# model; docs/runtime.md): a shared copy next to the checkout, else the one built by
# `make esp32-micropython MPY_SRC=...`. Without one its test runs skip with a message,
# except under CI (CI set, or GASGUARD_REQUIRE_ESP32_MPY=1), where that is a failure.
ESP32_MPY_BUILT := build/esp32-micropython/micropython
ESP32_MICROPYTHON ?= $(firstword $(wildcard ../shared/esp32-micropython/micropython $(ESP32_MPY_BUILT)))

# The AsyncAPI 3.0 meta-schema CI validates docs/asyncapi.json against: the npm package
# the AsyncAPI initiative publishes its schemas in (npm is a Debian package).
ASYNCAPI_SPECS := @asyncapi/specs@6.11.1
asyncapi-spec:
	@if [ -f 'build/asyncapi-specs/package/schemas/3.0.0-without-$$id.json' ]; then :; \
	else \
		if ! command -v npm >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; fi; \
		if command -v npm >/dev/null 2>&1; then \
			mkdir -p build/asyncapi-specs && cd build/asyncapi-specs && npm pack -q $(ASYNCAPI_SPECS) >/dev/null \
			&& tar xzf asyncapi-specs-*.tgz; \
		else echo "note: npm missing; the AsyncAPI validation test will be skipped"; fi; \
	fi

test: $(STAMP) broker docdeps asyncapi-spec postgres mbpoll
	$(if $(ESP32_MICROPYTHON),GASGUARD_ESP32_MICROPYTHON=$(abspath $(ESP32_MICROPYTHON))) $(PY) -m pytest -q

# Build the ESP32-like interpreter from a MicroPython v1.28.0 source tree (submodules not
# needed): the unix port as a static i386 binary with single-precision floats, no FFI,
# btree or ssl, nothing frozen. Needs gcc with 32-bit support (Debian: gcc-multilib,
# installed here when missing and run as root). The check at the end proves the object
# model: 31-bit small ints (sys.maxsize) and single floats (16777217.0 == 16777216.0).
ESP32_MPY_BUILD := build-gasguard-esp32
esp32-micropython:
	@test -n "$(MPY_SRC)" || { echo "usage: make esp32-micropython MPY_SRC=<MicroPython v1.28.0 source tree>"; exit 2; }
	@grep -Eq '^#define MICROPY_VERSION_MINOR \(?28\)?$$' $(MPY_SRC)/py/mpconfig.h \
		&& grep -Eq '^#define MICROPY_VERSION_MICRO \(?0\)?$$' $(MPY_SRC)/py/mpconfig.h \
		|| { echo "$(MPY_SRC) is not MicroPython v1.28.0"; exit 2; }
	@if ! echo 'int main(void){return 0;}' | gcc -m32 -x c -o /dev/null - 2>/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing gcc-multilib (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-multilib >/dev/null; \
		else echo "gcc cannot build 32-bit programs: install gcc-multilib"; exit 2; fi; fi
	$(MAKE) -C $(MPY_SRC)/mpy-cross -j2
	$(MAKE) -C $(MPY_SRC)/ports/unix -j2 VARIANT=standard BUILD=$(ESP32_MPY_BUILD) \
		MICROPY_FORCE_32BIT=1 MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 \
		MICROPY_PY_SSL=0 MICROPY_SSL_MBEDTLS=0 FROZEN_MANIFEST= \
		CFLAGS_EXTRA="-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT" LDFLAGS_EXTRA="-static"
	@mkdir -p $(dir $(ESP32_MPY_BUILT))
	cp $(MPY_SRC)/ports/unix/$(ESP32_MPY_BUILD)/micropython $(ESP32_MPY_BUILT)
	$(ESP32_MPY_BUILT) -c "import sys; assert sys.maxsize == 2**31 - 1; assert 16777217.0 == 16777216.0; print('ESP32-like MicroPython ok:', sys.implementation)"

sim: $(STAMP)
	$(GASGUARD) sim $(SIM_ARGS)

bench: $(STAMP)
	$(PY) -m gasguard_tools.bench $(BENCH_ARGS)

flash: $(STAMP)
	$(GASGUARD) flash --port $(PORT) --board $(BOARD) $(FLASH_ARGS)

package: $(STAMP)
	$(GASGUARD) package

# the wheel (and sdist) users install: firmware, boards, schemas and scenarios inside
# (setup.py); host_tests/tools/test_tools_install.py installs it into a fresh venv and runs it
wheel: $(STAMP)
	$(PY) -m pip wheel --no-deps -q -w dist .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist
