# callgate — see README.md. Two commands do everything on a fresh machine:
#   make run    private PostgreSQL + switchsim + callgate serve on 127.0.0.1:8080
#   make test   private PostgreSQL, then go test -race ./...
SHELL := /bin/bash
GO    ?= go
PG    := scripts/pg.sh
BIN   := bin/callgate
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build run test bench fuzz lint pg-start pg-stop clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/callgate

pg-start:
	@$(PG) start

pg-stop:
	@$(PG) stop

run: build pg-start
	@scripts/run.sh

test:
	@CALLGATE_PG_FAST=1 $(PG) start
	CALLGATE_TEST_DATABASE_URL="$$($(PG) dsn)" $(GO) test -race -count=1 -timeout 12m ./...

# Micro-benchmarks, then the whole-system benchmark against switchsim.
bench: build pg-start
	CALLGATE_TEST_DATABASE_URL="$$($(PG) dsn)" $(GO) test -run '^$$' -bench . -benchmem ./...
	CALLGATE_DATABASE_URL="$$($(PG) dsn)" $(BIN) bench --calls 5000

# Each fuzz target for a short while (go test runs their seed corpora on every make test).
FUZZTIME ?= 30s
fuzz:
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$t $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$t || exit 1; \
	  done; \
	done

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@bad=$$(grep -rl --include='*.go' '"github.com/percipia/eslgo' . | grep -v '^./controller/freeswitch/' || true); \
	  if [ -n "$$bad" ]; then echo "eslgo imported outside controller/freeswitch: $$bad"; exit 1; fi
	@bad=$$(grep -rlE --include='*.go' '"github.com/jackc/pgx' . | grep -v '^./controller/postgres/' || true); \
	  if [ -n "$$bad" ]; then echo "pgx (SQL) used outside controller/postgres: $$bad"; exit 1; fi
	@bad=$$(grep -rl --include='*.go' '"github.com/CyCoreSystems/ari' . | grep -v '^./controller/asterisk/' || true); \
	  if [ -n "$$bad" ]; then echo "the ARI library imported outside controller/asterisk: $$bad"; exit 1; fi
	@bad=$$(grep -rlE --include='*.go' 'sendmsg|uuid_|Unique-ID' . | grep -Ev '^./controller/(freeswitch|switchsim)/' || true); \
	  if [ -n "$$bad" ]; then echo "FreeSWITCH wire words (sendmsg, uuid_, Unique-ID) outside its driver and the simulator: $$bad"; exit 1; fi

clean:
	rm -rf bin
