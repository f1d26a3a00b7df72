# Two entry points (see README.md): `make demo` and `make test`.
# Both create the virtual environment .venv on first use and reuse it afterwards.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.rkc-installed
DEMO    = build/demo
MODEL   = tests/data/ppocr_mobile_v2_cls.onnx
IMAGE   = tests/data/ppocr_cls_sample.png
CALIB   = tests/data/ppocr_calib/dataset.txt

.PHONY: demo test test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Compile the PP-OCR text-direction classifier to an int8 .rknn for the RK3588, run the
# compiled register program in the simulator on a real text line (and on the same line
# upside down), then show what the file holds and the per-layer performance estimate.
demo: $(STAMP)
	@mkdir -p $(DEMO)
	$(BIN)/rkc compile $(MODEL) --input-shape x=1x3x48x192 --dataset $(CALIB) --mean 127.5 --std 127.5 --target rk3588 --save-ir $(DEMO)/ir -o $(DEMO)/cls.rknn
	$(BIN)/python examples/ppocr_cls_input.py $(IMAGE) --raw -o $(DEMO)/x.npy
	$(BIN)/rkc run $(DEMO)/cls.rknn --input x=$(DEMO)/x.npy --output $(DEMO)/out.npz
	$(BIN)/python examples/ppocr_cls_result.py $(DEMO)/out.npz
	@echo "--- the same text line turned upside down:"
	$(BIN)/python examples/ppocr_cls_input.py $(IMAGE) --raw --rotate 180 -o $(DEMO)/x180.npy
	$(BIN)/rkc run $(DEMO)/cls.rknn --input x=$(DEMO)/x180.npy --output $(DEMO)/out180.npz
	$(BIN)/python examples/ppocr_cls_result.py $(DEMO)/out180.npz
	@echo "--- what the .rknn holds (rkc inspect; --regcmd disassembles the register program):"
	$(BIN)/rkc inspect $(DEMO)/cls.rknn | head -n 24
	@echo "--- estimated performance per layer on one RK3588 core:"
	$(BIN)/rkc report --perf $(DEMO)/cls.rknn

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
