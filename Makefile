# musegen: `make demo` and `make test` work on a fresh machine with only Python 3 installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.musegen-installed
TORCH  ?= torch==2.13.0
OUT    ?= out/demo

.PHONY: venv demo test lint format bench clean

# CPU torch is pinned and installed first: an unpinned torch may pull a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,audio,plot,notation,cluster,web,hf,transcribe,live]"
	# SoundFont synthesis; --no-deps skips pyaudio (live playback only, needs PortAudio to build)
	-$(BIN)/python -m pip install -q --no-deps "tinysoundfont>=0.3"
	# transcription: basic-pitch's wheel carries the ONNX model; --no-deps skips TensorFlow
	-$(BIN)/python -m pip install -q --no-deps "basic-pitch>=0.4"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/musegen models
	$(BIN)/musegen generate --bars 8 --seed 2026 --render wav,png --out $(OUT) --name chorale
	$(BIN)/musegen info $(OUT)/chorale.mid
	@echo "demo: listen to $(OUT)/chorale.wav, look at $(OUT)/chorale.png, open $(OUT)/chorale.mid"

test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Benchmarks compare against peer libraries, installed only here.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench,hf]"
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
