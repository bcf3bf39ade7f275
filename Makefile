# Quick start: `make demo` and `make test` on a machine with Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.medkit-installed

.PHONY: demo test install clean-venv

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import medkit, torch, monai, papermill, nbval" 
	touch $(STAMP)

# The main job on the built-in phantom: the supervised few-label baseline, then the data tour.
# Rerunning continues (--resume) and never overwrites finished results.
demo: $(STAMP)
	MPLBACKEND=Agg $(PY) -m medkit supervised --data phantom --labelled 1,2,8 --steps 400 \
		--image-size 64 --val-every 100 --out papermill_runs/demo/supervised --resume --quiet
	mkdir -p papermill_runs/demo/00_data_tour
	MEDKIT_NO_WIDGETS=1 $(PY) -m papermill -k python3 --log-level WARNING notebooks/00_data_tour.ipynb \
		papermill_runs/demo/00_data_tour/00_data_tour.ipynb -p RUN_DIR papermill_runs/demo/00_data_tour
	@echo "demo done: see papermill_runs/demo/supervised/metrics.json and papermill_runs/demo/00_data_tour/"

# Unit tests and every notebook (nbval-lax: each cell must run; notebooks assert what they teach).
test: $(STAMP)
	MEDKIT_NO_WIDGETS=1 MPLBACKEND=Agg $(PY) -m pytest --nbval-lax -q tests notebooks

clean-venv:
	rm -rf $(VENV)
