# voxflow: `make demo` runs the study end to end on synthetic data;
# `make test` runs the tests. Both set up what they need on a fresh Debian 12.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
GO ?= go
BIN := bin
TEST_TIMEOUT ?= 25m
FUZZTIME ?= 10s

.PHONY: all build deps test test-short fuzz bench demo lint plugins proto clean

all: build

deps:
	@bash .ci/deps.sh

build:
	$(GO) build -o $(BIN)/voxflow ./cmd/voxflow
	$(GO) build -o $(BIN)/voxflow-pca ./plugins/examples/pca

plugins: build

test: deps build
	@bash .ci/slurm.sh || echo "make test: Slurm could not be started; Slurm tests skip outside CI"
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParseValidate -fuzztime=$(FUZZTIME) ./engine/spec
	$(GO) test -run='^$$' -fuzz=FuzzReadNPY -fuzztime=$(FUZZTIME) ./stages/npy

test-short: build
	$(GO) test -short -count=1 ./...

bench: deps build
	$(GO) run ./cmd/voxflow-bench 2>/dev/null || true
	$(GO) test -run='^$$' -bench=. -benchtime=1x -timeout 60m ./...

demo: deps build
	$(BIN)/voxflow run specs/demo.yaml
	$(BIN)/voxflow compare specs/demo.yaml

lint:
	$(GO) vet ./...
	@gofmt -l $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

-include Makefile.plugins
