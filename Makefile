# cryo build. `make` builds build/cryo and build/libcryo.a; `make test` runs the
# suite; `make demo` runs the seed's counter demo; `make bench` the benchmarks.
# Missing build dependencies are installed from Debian by scripts/install-deps.sh.

CC      ?= gcc
PREFIX  ?= /usr/local
B       := build
CFLAGS  := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
           -Iinclude -Isrc -I$(B)/images $(EXTRA_CFLAGS)
LDLIBS  := -lprotobuf-c -lnftables  # also in cryo.pc.in
VERSION := $(shell sed -n 's/^\#define CRYO_VERSION "\(.*\)"/\1/p' include/cryo/cryo.h)

PROTOS   := $(wildcard images/*.proto)
PB_C     := $(patsubst images/%.proto,$(B)/images/%.pb-c.c,$(PROTOS))
PB_H     := $(PB_C:.c=.h)
LIB_SRC  := $(wildcard src/*.c src/infra/*.c src/sockets/*.c)
LIB_OBJ  := $(patsubst %.c,$(B)/%.o,$(LIB_SRC)) $(PB_C:.c=.o)
CLI_OBJ  := $(B)/src/cli/main.o $(B)/src/cli/options.o $(B)/src/cli/supervise.o \
	    $(B)/src/cli/runlock.o $(B)/src/cli/config.o
WL_SRC   := $(filter-out tests/workloads/wl.c,$(wildcard tests/workloads/*.c))
WL_BIN   := $(patsubst tests/workloads/%.c,$(B)/tests/%,$(WL_SRC))
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all deps test demo bench install clean format san workloads unit
all: $(B)/.deps $(B)/cryo $(B)/libcryo.a

$(B)/.deps: scripts/install-deps.sh
	@mkdir -p $(B)
	@scripts/install-deps.sh
	@touch $@

deps: $(B)/.deps

$(B)/images/%.pb-c.c $(B)/images/%.pb-c.h: images/%.proto $(B)/.deps
	@mkdir -p $(B)/images
	protoc-c --proto_path=images --c_out=$(B)/images $<

$(B)/%.o: %.c $(PB_H) $(wildcard src/*.h src/infra/*.h src/cli/*.h include/cryo/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/images/%.pb-c.o: $(B)/images/%.pb-c.c
	$(CC) $(CFLAGS) -Wno-unused-parameter -c -o $@ $<

$(B)/libcryo.a: $(LIB_OBJ)
	ar rcs $@ $^

$(B)/cryo: $(CLI_OBJ) $(B)/libcryo.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The same tool built with AddressSanitizer and UBSan; the suite runs both.
san: $(B)/.deps $(PB_H)
	$(MAKE) B=$(B)/san EXTRA_CFLAGS="$(SAN_FLAGS)" LDLIBS="$(LDLIBS) $(SAN_FLAGS)" \
		$(B)/san/cryo

$(B)/tests/%: tests/workloads/%.c tests/workloads/wl.h tests/workloads/wl.c
	@mkdir -p $(B)/tests
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $< tests/workloads/wl.c -lm

$(B)/libcli.a: $(B)/src/cli/options.o $(B)/src/cli/supervise.o $(B)/src/cli/runlock.o \
		$(B)/src/cli/config.o
	ar rcs $@ $^

$(B)/unit/%: tests/unit/%.c $(B)/libcli.a $(B)/libcryo.a
	@mkdir -p $(B)/unit
	$(CC) $(CFLAGS) -o $@ $< $(B)/libcli.a $(B)/libcryo.a $(LDLIBS)

$(B)/bench/%: bench/%.c
	@mkdir -p $(B)/bench
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $<

workloads: $(WL_BIN)
unit: $(UNIT_BIN)

test: all san workloads unit
	python3 tests/run.py

demo: all
	python3 tests/demo.py

bench: all workloads $(BENCH_BIN)
	python3 bench/bench.py
	python3 bench/run_overhead.py
	python3 bench/tcpconns.py

install: all
	install -D -m 0755 $(B)/cryo $(DESTDIR)$(PREFIX)/sbin/cryo
	install -D -m 0644 $(B)/libcryo.a $(DESTDIR)$(PREFIX)/lib/libcryo.a
	install -D -m 0644 include/cryo/cryo.h $(DESTDIR)$(PREFIX)/include/cryo/cryo.h
	install -D -m 0644 man/cryo.8 $(DESTDIR)$(PREFIX)/share/man/man8/cryo.8
	@mkdir -p $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' cryo.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/cryo.pc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(B)
