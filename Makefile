# Quick start: `make demo` and `make test` on a machine with Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.medkit-installed

.PHONY: demo test browser-test install clean-venv

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import medkit, torch, monai, papermill, nbval" 
	touch $(STAMP)

# The main job on the built-in phantom: the supervised few-label baseline, Med-MoCo pretraining,
# its linear-probe evaluation and collapse diagnosis, then the demo study (every notebook). Rerunning continues
# (--resume) and never overwrites finished results.
DEMO := papermill_runs/demo
SMALL := --data phantom --image-size 64 --val-every 100 --quiet
demo: $(STAMP)
	MPLBACKEND=Agg $(PY) -m medkit supervised $(SMALL) --labelled 1,2,8 --steps 400 --out $(DEMO)/supervised --resume
	MPLBACKEND=Agg $(PY) -m medkit pretrain $(SMALL) --method med_moco --steps 300 --out $(DEMO)/pretrain_med_moco --resume
	MPLBACKEND=Agg $(PY) -m medkit evaluate $(SMALL) --checkpoint $(DEMO)/pretrain_med_moco --eval-protocol linear \
		--labelled 1,2,8 --steps 400 --out $(DEMO)/linear_med_moco --resume
	MPLBACKEND=Agg $(PY) -m medkit diagnose --resume \
		--checkpoint $(DEMO)/pretrain_med_moco --data phantom --out $(DEMO)/diagnose_med_moco
	MPLBACKEND=Agg $(PY) -m medkit study papermill_runs/studies/demo.yaml
	@echo "demo done. Look at: $(DEMO)/supervised/metrics.json, $(DEMO)/linear_med_moco/metrics.json,"
	@echo "  $(DEMO)/diagnose_med_moco/ (diagnostics.json, figures/) and each notebook's folder in $(DEMO)/"

# Unit tests and every notebook (nbval-lax: each cell must run; notebooks assert what they teach).
test: $(STAMP)
	MEDKIT_NO_WIDGETS=1 MPLBACKEND=Agg $(PY) -m pytest --nbval-lax -q --durations=8 tests notebooks

# Notebooks 00 and 05 in a live JupyterLab driven by headless Chromium (needs Debian's chromium:
# apt-get install chromium; skipped with the reason where it is absent). Screenshots: tests/browser/output/.
browser-test: $(STAMP)
	$(PY) -m pytest -q --durations=4 tests/browser

clean-venv:
	rm -rf $(VENV)

# Mutation check of the paired statistics: each patch in tests/mutants/ (a plausible mistake in
# medkit/eval/paired.py or verdicts.py) is applied to a temporary copy and must fail a test in tests/eval.
.PHONY: mutants
mutants: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) tests/mutants/run_mutants.py
