# The two commands of the README:
#   make demo   set up .venv on a fresh machine, then run the demo (GRPO on the embedded model)
#   make test   set up .venv, then run the test suite (what CI runs)
.PHONY: setup demo test lab

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/workbench demo

test: setup
	.venv/bin/python -m pytest

# JupyterLab on notebooks/ with the project's environment as the kernel.
lab: setup
	.venv/bin/python -m pip install -q -e ".[notebook]"
	.venv/bin/python -m ipykernel install --user --name r1-workbench --display-name "R1 Workbench (.venv)"
	.venv/bin/jupyter lab notebooks/
