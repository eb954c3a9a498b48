# voxflow: `make demo` runs the study end to end on synthetic data;
# `make test` runs the tests. Both set up what they need on a fresh Debian 12.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
GO ?= go
BIN := bin
TEST_TIMEOUT ?= 25m
FUZZTIME ?= 10s

.PHONY: all build deps generate test test-short fuzz bench demo lint plugins proto clean

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
	$(GO) test -run='^$$' -fuzz=FuzzReadNPY -fuzztime=$(FUZZTIME) ./numerics/npy
	$(GO) test -run='^$$' -fuzz=FuzzValueRoundTrip -fuzztime=$(FUZZTIME) ./stages

# Record the builtin kinds' code digests (stages/builtin/impl_gen.go) after
# changing their code; make test fails until this is run. A change that
# cannot alter outputs is declared instead, keeping cached results:
#   go run ./internal/implgen/cmd/implgen -dir stages/builtin -neutral KIND -reason "why"
generate:
	$(GO) generate ./stages/builtin

test-short: build
	$(GO) test -short -count=1 ./...

# Benchmarks, each measured beside its baseline in the same run (the machine
# is shared and noisy): no-op reruns and planning of 100- and 10,000-stage
# DAGs, hashing a 1 GiB file, decoding PNGs, ridge at NSD scale against the
# same-run sgemm rate, networks against PyTorch, plugin overhead, Slurm round
# trips, outside-input fingerprints, the PyTorch plugin's step against PyTorch
# and Go, and the full-shape NSD rehearsal. Figures go to stdout and
# bench.txt. On 2 cores the full run takes hours, mostly ridge on AlexNet's
# 9,216-wide features.12 (stages/ridge); run one package with
# `go test -run='^$$' -bench=. -benchtime=1x ./stages/ridge` and the like.
BENCH_PKGS := ./cmd/voxflow ./cache ./engine/spec ./stages/data ./stages/ridge ./numerics/linalg ./numerics/accel ./numerics/network ./plugins ./plugins/python ./engine/slurm
bench: deps build
	@bash .ci/slurm.sh >/dev/null 2>&1 || true
	VOXFLOW_BENCH_HASH_MB=1024 VOXFLOW_BENCH_FULL=1 $(GO) test -run='^$$' -bench=. -benchtime=1x -timeout 240m $(BENCH_PKGS) 2>&1 | tee bench.txt

demo: deps build
	$(BIN)/voxflow run specs/demo.yaml
	$(BIN)/voxflow report specs/demo.yaml -o demo-report.html

lint:
	$(GO) vet ./...
	@gofmt -l $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)

-include Makefile.plugins
