# Two entry points: `make demo` (install what is missing, run a simulated city)
# and `make test` (install what is missing, run the whole suite).
VENV ?= .venv
PYTHON ?= python3
# package:file it installs (a program, or a header for the ingest benchmark's C publisher);
# chromium is the browser the page tests drive (Playwright never downloads one), and
# fonts-wqy-microhei a small CJK font so its Chinese labels show as glyphs, not boxes
OS_PACKAGES := mosquitto:/usr/sbin/mosquitto influxdb:/usr/bin/influxd \
	gcc:/usr/bin/cc libmosquitto-dev:/usr/include/mosquitto.h chromium:/usr/bin/chromium \
	fonts-wqy-microhei:/usr/share/fonts/truetype/wqy/wqy-microhei.ttc

.PHONY: install os-packages demo test lint clean

install: os-packages $(VENV)/.installed

os-packages:
	@missing=""; \
	for entry in $(OS_PACKAGES); do \
	  pkg=$${entry%%:*}; bin=$${entry#*:}; \
	  [ -e "$$bin" ] || command -v "$$(basename $$bin)" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	  else echo "urbanwatch needs the OS packages:$$missing"; \
	       echo "Run:  sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; fi; \
	  echo "Installing OS packages:$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

demo: install
	$(VENV)/bin/urbanwatch demo

test: install  # one worker per core; a test file's tests stay together (module-scoped fixtures)
	$(VENV)/bin/pytest -n auto --dist loadfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy devices ingest rules alerts api simulators urbanwatch bench

clean:
	rm -rf $(VENV) .urbanwatch .pytest_cache .mypy_cache .ruff_cache
