# Tandem — build, test, benchmark, demo.
# Tool versions are pinned here; everything installs from the Go module proxy.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/.bin
BUF_VERSION := v1.57.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
STATICCHECK_VERSION := v0.8.2
TEST_TIMEOUT ?= 9m

.PHONY: all build test check proto proto-tools demo bench bench-psi bench-audit bench-stats bench-vlr bench-score soak realdata-ref realdata-glm fmt clean

all: build

build:
	$(GO) build -o tandem ./cmd/tandem

## test: the CI test suite (must stay under 10 minutes on 2 cores).
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	# The assembly's fallback: the same tests without the AVX-512 kernels.
	$(GO) test -count=1 -tags purego ./internal/ntt/ ./internal/cfft/ ./fedlearn/

## check: formatting, vet, staticcheck, tidy go.mod, generated code current.
check: proto-check
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(BIN)/staticcheck ./...
	cp go.mod /tmp/tandem-go.mod.bak && cp go.sum /tmp/tandem-go.sum.bak
	$(GO) mod tidy && git diff --exit-code go.mod go.sum || { cp /tmp/tandem-go.mod.bak go.mod; cp /tmp/tandem-go.sum.bak go.sum; echo "go.mod not tidy"; exit 1; }

proto-tools:
	@test -x $(BIN)/buf || GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@test -x $(BIN)/protoc-gen-go || GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(BIN)/protoc-gen-go-grpc || GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

## proto: regenerate proto/tandem/v1/*.pb.go (no system protoc needed: buf compiles).
proto: proto-tools
	$(BIN)/buf generate

## proto-check: fail when the committed generated code is stale.
proto-check: proto-tools
	@tmp=$$(mktemp -d) && cp -r proto $$tmp/ && $(BIN)/buf generate -o $$tmp/gen --template buf.gen.yaml >/dev/null && \
	  for f in proto/tandem/v1/*.pb.go; do cmp -s $$f $$tmp/gen/$$f || { echo "stale generated code: $$f (run make proto)"; rm -rf $$tmp; exit 1; }; done; rm -rf $$tmp; echo "generated code current"

## demo: a local testnet with synthetic data running the whole flow built so far.
demo: build
	./tandem demo

## bench: every benchmark recorded in BENCHMARKS.md.
bench: bench-psi bench-audit bench-stats bench-vlr bench-score

## bench-psi: primitives and kernel, the in-process pipeline, and a two-node
## loopback PSI with real processes at 1e6 x 1e6 (TANDEM_BENCH_N=1e5 for a
## quick run, 1e7 for the memory figure: about 40 minutes).
bench-psi:
	$(GO) test -run '^$$' -bench 'Primitive|Kernel' -benchtime 2s -cpu 1 ./psi/
	$(GO) test -run '^$$' -bench 'PSI/' -benchtime 1x ./protocol/
	TANDEM_BENCH_N=$${TANDEM_BENCH_N:-1e6} $(GO) test -run '^$$' -bench 'PSILoopback' -benchtime 1x -timeout 120m ./cmd/tandem/

bench-audit:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./audit/...

bench-stats:
	$(GO) test -run '^$$' -bench 'Stats|WOEIV|Paillier' -benchtime 1x -timeout 30m ./fedlearn/

## bench-vlr: one training epoch at 1e5 and 1e6 (core, protocol, two node
## processes on loopback; TANDEM_BENCH_N=1e5 for a quick loopback run), and
## training to convergence, and the NTT and FFT kernels.
bench-vlr:
	$(GO) test -run '^$$' -bench 'Epoch' -benchtime 4x -timeout 30m ./fedlearn/vlr/
	$(GO) test -run '^$$' -bench 'TrainToConvergence' -benchtime 1x -timeout 30m ./fedlearn/vlr/
	$(GO) test -run '^$$' -bench 'TrainJob' -benchtime 2x -timeout 30m ./protocol/
	TANDEM_BENCH_N=$${TANDEM_BENCH_N:-1e6} $(GO) test -run '^$$' -bench 'TrainLoopback' -benchtime 1x -timeout 60m ./cmd/tandem/
	$(GO) test -run '^$$' -bench VLREpochFloor -benchtime 1x ./fedlearn/
	$(GO) test -run '^$$' -bench . -benchtime 3000x ./internal/ntt/
	$(GO) test -run '^$$' -bench . -benchtime 5000x ./internal/cfft/

## bench-score: the masked-release kernel, the score protocols (scores, and
## bands only) at 1e6, a pass over a 1e6-row CSV, and both score modes
## between two node processes on loopback (TANDEM_BENCH_N=1e5 for a quick
## run).
bench-score:
	$(GO) test -run '^$$' -bench 'MaskedRelease' -benchtime 3x ./fedlearn/
	$(GO) test -run '^$$' -bench 'Columns' -benchtime 5x ./node/dataset/
	$(GO) test -run '^$$' -bench 'FixedAES|SenderPads|PadsOnly' -benchtime 2s ./ot/
	$(GO) test -run '^$$' -bench 'Compare' -benchtime 2s ./bands/
	$(GO) test -run '^$$' -bench 'ScoreJob|ScoreBands' -benchtime 3x ./protocol/
	TANDEM_BENCH_N=$${TANDEM_BENCH_N:-1e6} $(GO) test -run '^$$' -bench 'ScoreLoopback' -benchtime 1x -timeout 60m ./cmd/tandem/

## realdata-ref: regenerate testnet/testdata/german_credit*.csv from R's caret
## data and glm (needs r-base-core and r-cran-caret), then check the tests'
## plaintext baseline against it.
realdata-ref:
	cd testnet/testdata && Rscript german_credit.R
	$(GO) test -count=1 -run 'TestRealCredit' -v ./node/

## realdata-glm: the German credit data split between two real node
## processes with messy identifiers; PSI, training on every shared applicant,
## scoring, and the split model's AUC against R's glm on the joined
## plaintext; then again with missing cells and missing: drop (needs
## r-base-core; about 10 s).
realdata-glm:
	scripts/realdata-glm.sh && scripts/realdata-glm.sh missing

## soak: long crash-safety runs (kill -9 during appends, 200 iterations).
soak:
	TANDEM_SOAK=200 $(GO) test -count=1 -run 'Crash|Soak' -timeout 60m ./audit/...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -f tandem
