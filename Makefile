# graft - the two set-up commands are `make demo` and `make test`.
# Both install missing Debian packages (when run as root) and build first.
#
#   make demo        build, then run the bundled example end to end
#   make test        build (release with -Werror, and ASan+UBSan), run every test
#   make bench       every benchmark; make bench-<area> for one area
#   make build       just build into build/

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
BENCH_AREAS := $(patsubst bench/%/run.sh,%,$(wildcard bench/*/run.sh))

.PHONY: all deps build build-asan test test-fast demo bench clean $(addprefix bench-,$(BENCH_AREAS))

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAFT_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The sanitizer build uses clang so the libFuzzer targets build there too.
build-asan: deps
	@CC=clang CXX=clang++ cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug \
	    -DGRAFT_SANITIZE=ON -DGRAFT_WERROR=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -LE sanitize-only
	cd $(ASAN_BUILD) && ctest --output-on-failure -j$(JOBS) -L sanitize

# Release build only, for quick iteration.
test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -LE sanitize-only

demo: build
	@examples/demo.sh $(BUILD)

bench: $(addprefix bench-,$(BENCH_AREAS))

$(addprefix bench-,$(BENCH_AREAS)): bench-%: build
	@bench/$*/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The verifier's soundness fuzzer for longer than the ctest pass:
#   make fuzz-soundness FUZZ_SECONDS=600 [FUZZ_ARGS="--seed 0x1 --kernel tests/verifier/kernel_diff.md"]
FUZZ_SECONDS ?= 300
FUZZ_ARGS ?=
.PHONY: fuzz-soundness
fuzz-soundness: build
	@cmake --build $(BUILD) --target soundness_fuzz >/dev/null
	$(BUILD)/tests/fuzz/soundness_fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)
