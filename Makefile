# bookrec: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh), then
# build with CMake. Everything else is here for developers.
#
#   make demo                       generate the seed universe and run the main job
#   make test                       build and run every test (ctest + cmocka)
#   make test SANITIZE=address,undefined   the same under sanitizers
#   make bench                      benchmarks against the Python peers (bench/)
#   make install PREFIX=/usr/local  library, headers, bookrec.pc, the CLI
#   make format                     clang-format every C file

PREFIX   ?= /usr/local
SANITIZE ?=
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_TYPE ?= $(if $(SANITIZE),Debug,Release)
BUILD    ?= build$(if $(SANITIZE),-san-$(subst $(comma),-,$(SANITIZE)))
comma    := ,
DEMO_DIR ?= demo-out
BOOKREC  := $(BUILD)/bookrec

.PHONY: all build deps deps-test deps-bench demo test bench install format clean

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
	@mkdir -p $(DEMO_DIR)
	$(BOOKREC) generate --books 1000 --users 100 --seed 42 --rng numpy --out $(DEMO_DIR)/seed
	$(BOOKREC) stats --books $(DEMO_DIR)/seed/books.csv --ratings $(DEMO_DIR)/seed/ratings.csv

test: deps-test
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps-bench
	@$(MAKE) --no-print-directory build
	bench/run.sh $(BUILD)

install: deps
	@$(MAKE) --no-print-directory build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san-* $(DEMO_DIR)
