# Two entry points (see README.md): `make demo` and `make test`.
# Both create the virtual environment .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.rkc-installed
DEMO    = build/demo
MODEL   = tests/data/ppocr_mobile_v2_cls.onnx
IMAGE   = tests/data/ppocr_cls_sample.png

.PHONY: demo test test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Import the PP-OCR text-direction classifier, optimise it, run it on a real image.
demo: $(STAMP)
	@mkdir -p $(DEMO)
	$(BIN)/rkc import $(MODEL) --input-shape x=1x3x48x192 -o $(DEMO)/cls.mlir
	$(BIN)/rkc-opt $(DEMO)/cls.mlir -p nn-canonicalize,nn-fold-batchnorm,nn-fuse-activation,cse,dce -o $(DEMO)/cls.opt.mlir
	$(BIN)/python examples/ppocr_cls_input.py $(IMAGE) -o $(DEMO)/x.npy
	$(BIN)/rkc run $(DEMO)/cls.opt.mlir --input x=$(DEMO)/x.npy --layers --output $(DEMO)/out.npz
	$(BIN)/python examples/ppocr_cls_result.py $(DEMO)/out.npz
	@echo "--- the same text line turned upside down:"
	$(BIN)/python examples/ppocr_cls_input.py $(IMAGE) --rotate 180 -o $(DEMO)/x180.npy
	$(BIN)/rkc run $(DEMO)/cls.opt.mlir --input x=$(DEMO)/x180.npy --output $(DEMO)/out180.npz
	$(BIN)/python examples/ppocr_cls_result.py $(DEMO)/out180.npz

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/print_parse.py

clean:
	rm -rf build $(VENV)
