# lethe: build, test, sanitize, fuzz, install.
#
#   make                 build build/lethe, build/liblethe.a, build/liblethe.so
#   make test            install what is missing, build, run every test
#   make sanitize        the test suite under ASan + UBSan (in build/san)
#   make valgrind        the unit tests under valgrind memcheck
#   make fuzz            each fuzz harness for FUZZ_SECONDS (default 60)
#   make demo            install what is missing, build, run the demo
#   make bench           lethe against its PyTorch twin (bench/run.sh)
#   make bench-exact     SISA, S3T and ridge removal against retraining
#   make bench-gpt       GPT-2 training steps and generation against PyTorch
#   make install PREFIX=/usr/local
#
# Options: PORTABLE=1 (no -march=native), OMP=0 (no OpenMP), WERROR=1,
# SAN=1 (ASan + UBSan), BUILD=dir, MPI=0|1 (lethe sisa over mpirun; on by
# default when Open MPI's mpicc or pkg-config's ompi-c is found, except in
# the sanitizer, valgrind and fuzz builds, which keep the one-process
# implementation of src/core/mpi.c).

VERSION   := 0.1.0
BUILD     ?= build
PREFIX    ?= /usr/local
PORTABLE  ?= 0
OMP       ?= 1
SAN       ?= 0
WERROR    ?= 0
FUZZ_SECONDS ?= 60
CC        ?= cc
FUZZ_CC   ?= clang

LIB_SRC  := $(sort $(wildcard src/core/*.c src/data/*.c src/nn/*.c src/train/*.c \
              src/exact/*.c src/unlearn/*.c src/guard/*.c src/eval/*.c src/serve/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-missing-field-initializers
CPPFLAGS += -Iinclude -I/usr/include/cjson -D_GNU_SOURCE -DLETHE_VERSION='"$(VERSION)"'
CFLAGS   ?=
BASE_CFLAGS = -std=c11 $(WARN) -fPIC -fvisibility=hidden -MMD -MP -g -fno-math-errno
LDLIBS   := -lopenblas -lcjson -lcurl -lmicrohttpd -lz -lm -lpthread

# MPI: Open MPI's flags for the library's objects and the programs that
# link them (not the fuzz harnesses, which keep the one-process code).
ifeq ($(SAN),1)
  MPI ?= 0
endif
MPI ?= $(shell if pkg-config --exists ompi-c 2>/dev/null || command -v mpicc >/dev/null 2>&1; \
          then echo 1; else echo 0; fi)
ifeq ($(MPI),1)
  MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile)
  MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link)
  # -isystem: Open MPI's headers are not held to lethe's warnings
  MPI_CPPFLAGS := -DLETHE_MPI $(patsubst -I%,-isystem %,$(filter -I%,$(MPI_CFLAGS))) \
                  $(filter-out -I%,$(MPI_CFLAGS))
endif

ifeq ($(SAN),1)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(PORTABLE),1)
  OPT := -O2
else
  OPT := -O3 -march=native
endif
ifeq ($(OMP),1)
  OPT += -fopenmp
  LDFLAGS += -fopenmp
else
  WARN += -Wno-unknown-pragmas
endif
ifeq ($(WERROR),1)
  WARN += -Werror
endif
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)

.PHONY: all lib test check sanitize valgrind fuzz demo deps install install-files uninstall clean bench bench-exact \
        bench-gpt
all: $(BUILD)/lethe $(BUILD)/liblethe.a $(BUILD)/liblethe.so
lib: $(BUILD)/liblethe.a $(BUILD)/liblethe.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(MPI_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/liblethe.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/liblethe.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,liblethe.so.0 $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIBS)

$(BUILD)/lethe: $(CLI_OBJ) $(BUILD)/liblethe.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/liblethe.a $(LDLIBS) $(MPI_LIBS)

# The runner links the objects directly so every test's constructor is kept.
$(BUILD)/test_unit: $(TEST_OBJ) $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MPI_LIBS)

deps:
	@scripts/deps.sh

# check: build and run the suite without touching packages.
check: $(BUILD)/lethe $(BUILD)/test_unit $(BUILD)/liblethe.so
	@tests/run.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory check

# The sanitizers slow each process tenfold: the concurrent-forget test runs 10
# pairs per engine there (50 in the plain suite), the serving crash test 10
# kills (50), and the unlearning matrix leaves out its two largest data sets
# (every method still meets a classifier and a regressor). The two pipeline scripts,
# 40% of the sanitized suite's time, are skipped by default: each stage they
# run is a library call that eval_tofu, unlearn_lm, train_gpt and eval_muse
# run under the sanitizers too. SAN_SKIP= runs them as well.
SAN_SKIP ?= tofu_run muse_run
sanitize: deps
	@LETHE_CONCURRENT_PAIRS=$${LETHE_CONCURRENT_PAIRS:-10} LETHE_SERVE_KILLS=$${LETHE_SERVE_KILLS:-10} \
	  LETHE_MATRIX_QUICK=$${LETHE_MATRIX_QUICK:-1} LETHE_TEST_SKIP="$(SAN_SKIP)" \
	  $(MAKE) --no-print-directory BUILD=$(BUILD)/san SAN=1 check

# valgrind: the unit runner under memcheck (errors and definite leaks fail;
# LETHE_TEST_QUICK thins the work of the slowest tests, test_quick()),
# built PORTABLE=1 in $(BUILD)/vg: valgrind does not decode AVX-512.
# VG_SHARDS runners share the tests (LETHE_TEST_SHARD), side by side.
VG_SHARDS ?= 2
valgrind:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/vg PORTABLE=1 MPI=0 $(BUILD)/vg/test_unit
	@rc=0; pids=; for i in $$(seq 0 $$(($(VG_SHARDS) - 1))); do \
	  LETHE_TEST_SHARD=$$i/$(VG_SHARDS) LETHE_TEST_QUICK=1 OMP_NUM_THREADS=1 valgrind -q \
	    --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	    $(BUILD)/vg/test_unit >$(BUILD)/vg/shard$$i.log 2>&1 & pids="$$pids $$!"; \
	done; \
	for p in $$pids; do wait $$p || rc=1; done; \
	for i in $$(seq 0 $$(($(VG_SHARDS) - 1))); do echo "valgrind shard $$i/$(VG_SHARDS):"; \
	  cat $(BUILD)/vg/shard$$i.log; done; exit $$rc

# Fuzz harnesses: libFuzzer (clang) over the library's sources, compiled
# once into $(BUILD)/fuzz/obj with the fuzzer's coverage hooks, each harness
# run for FUZZ_SECONDS from the committed seed corpus (copied, so the tree
# stays clean). The runs are separate targets, so -j2 runs two at a time.
FUZZ_LIB := $(filter-out src/cli/%,$(LIB_SRC))
FUZZ_OBJ := $(FUZZ_LIB:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_FLAGS := -std=c11 -g -O1 -Wno-unknown-pragmas -fno-sanitize-recover=undefined
$(FUZZ_OBJ): $(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP \
	  -c $< -o $@
$(FUZZ_BIN): $(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@echo "fuzz: link $@"
	@$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined \
	  -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@$(MAKE) --no-print-directory $(FUZZ_SRC:tests/fuzz/%.c=fuzz-run-%)

fuzz-run-%: $(BUILD)/fuzz/%
	@corpus=$(BUILD)/fuzz/corpus-$*; mkdir -p $$corpus; \
	if [ -d tests/fuzz/corpus/$* ]; then cp -n tests/fuzz/corpus/$*/* $$corpus/ 2>/dev/null; fi; \
	echo "fuzz: $* for $(FUZZ_SECONDS) s"; \
	$(BUILD)/fuzz/$* -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	  -print_final_stats=0 $$corpus >$(BUILD)/fuzz/$*.log 2>&1 \
	  || { tail -n 40 $(BUILD)/fuzz/$*.log; echo "fuzz: $* FOUND A FAILURE"; exit 1; }; \
	echo "fuzz: $* $$(grep -E '^#[0-9]+.*DONE' $(BUILD)/fuzz/$*.log | tail -n 1)"

demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/lethe
	@scripts/demo.sh $(BUILD)/lethe

# bench: lethe against its PyTorch twin, side by side (bench/run.sh; results
# in $(BUILD)/bench, summary in bench/RESULTS.md). BENCH_REPS repetitions.
BENCH_REPS ?= 3
bench: $(BUILD)/liblethe.a
	@BUILD=$(BUILD) bench/run.sh -r $(BENCH_REPS)

# bench-gpt: GPT-2 steps and generation against the PyTorch twin (bench/gpt_bench.py).
bench-gpt: $(BUILD)/bench/bench_gpt
	@BUILD=$(BUILD) bench/gpt_bench.py --reps $(BENCH_REPS)

# bench-exact: exact unlearning against retraining (bench/exact_bench.py).
bench-exact: $(BUILD)/lethe $(BUILD)/bench/bench_ridge
	@BUILD=$(BUILD) LETHE=$(BUILD)/lethe bench/exact_bench.py --work $(BUILD)/bench/exact

$(BUILD)/bench/bench_ridge $(BUILD)/bench/bench_gpt $(BUILD)/bench/bench_guard: $(BUILD)/bench/%: bench/%.c $(BUILD)/liblethe.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(BUILD)/liblethe.a $(LDFLAGS) $(LDLIBS) $(MPI_LIBS)

install: all
	@$(MAKE) --no-print-directory install-files

# install-files: copy what is built, building nothing (the install test uses it).
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include/lethe
	install -m 755 $(BUILD)/lethe $(DESTDIR)$(PREFIX)/bin/lethe
	install -m 644 $(BUILD)/liblethe.a $(DESTDIR)$(PREFIX)/lib/liblethe.a
	install -m 755 $(BUILD)/liblethe.so $(DESTDIR)$(PREFIX)/lib/liblethe.so.$(VERSION)
	ln -sf liblethe.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/liblethe.so.0
	ln -sf liblethe.so.0 $(DESTDIR)$(PREFIX)/lib/liblethe.so
	install -m 644 include/lethe/*.h $(DESTDIR)$(PREFIX)/include/lethe/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@MPI_LIBS@|$(MPI_LIBS)|' \
	  lethe.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lethe.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/lethe $(DESTDIR)$(PREFIX)/lib/liblethe.* \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/lethe.pc
	rm -rf $(DESTDIR)$(PREFIX)/include/lethe

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
