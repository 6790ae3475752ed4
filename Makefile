# SPDX-License-Identifier: BSD-2-Clause
# Two entry points for a fresh machine: `make demo` and `make test`.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build test unit demo bench fuzz clean
all: build

deps:
	@bash tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@bash tools/run-tests.sh $(BUILD)

unit: build
	@cd $(BUILD) && ctest -L unit --output-on-failure

demo: build
	@bash tools/demo.sh $(BUILD)

fuzz: deps
	@bash tools/fuzz.sh 60

bench: build
	@bash tools/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD)
