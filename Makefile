# The two commands of the README:
#   make demo   set up .venv on a fresh machine, then run the demo (GRPO on the embedded model)
#   make test   set up .venv, then run the test suite (what CI runs)
.PHONY: setup browser demo test lab

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/workbench demo

test: setup browser
	.venv/bin/python -m pytest

# The app's browser tests drive Debian's Chromium through chromedriver (never a downloaded browser).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium chromium-driver; }

# JupyterLab on notebooks/ with the project's environment as the kernel.
lab: setup
	.venv/bin/python -m pip install -q -e ".[notebook]"
	.venv/bin/python -m ipykernel install --user --name r1-workbench --display-name "R1 Workbench (.venv)"
	.venv/bin/jupyter lab notebooks/
