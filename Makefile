# Relief — the two commands are `make dev` and `make test`.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
VENDOR := web/static/vendor/.stamp

.PHONY: dev test build web lint fmt-check vet staticcheck workflowcheck unit bench-intake bench-export faults tools clean

## dev: build and run everything on this machine (PostgreSQL, Temporal, worker, web on :8080)
dev: build
	./bin/relief dev

## build: the relief binary with embedded templates and KRDS assets
build: $(VENDOR)
	$(GO) build -o bin/relief ./cmd/relief

## web: install KRDS and htmx from npm into web/static/vendor (embedded by go build)
web: $(VENDOR)
$(VENDOR): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	rm -rf web/static/vendor
	mkdir -p web/static/vendor/krds/css web/static/vendor/krds/img web/static/vendor/htmx
	cp -r web/node_modules/krds-uiux/resources/css/{common,token,component} web/static/vendor/krds/css/
	find web/static/vendor -name '*.map' -delete
	# component.css points at ../../img/img/...; keep that layout so icons resolve locally
	cp -r web/node_modules/krds-uiux/resources/img web/static/vendor/krds/img/img
	cp -r web/node_modules/krds-uiux/resources/fonts web/static/vendor/krds/fonts
	cp web/node_modules/htmx.org/dist/htmx.min.js web/static/vendor/htmx/
	install -D -m 644 web/node_modules/chart.js/dist/chart.umd.min.js web/static/vendor/chart/chart.umd.min.js
	touch $@

## test: lint, then every test (real PostgreSQL, real Temporal, headless Chromium)
test: $(VENDOR) lint
	$(GO) test -count=1 -timeout 45m ./...

unit: $(VENDOR)
	$(GO) test -count=1 -short ./...

lint: fmt-check vet staticcheck workflowcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './web/node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: $(VENDOR)
	$(GO) vet ./...

tools:
	@test -x $(GOBIN)/staticcheck && $(GOBIN)/staticcheck -version | grep -q '0.8.2' || GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@test -x $(GOBIN)/workflowcheck || GOFLAGS= $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

staticcheck: tools $(VENDOR)
	$(GOBIN)/staticcheck ./...

## workflowcheck: no time.Now, goroutines, map ranges etc. reachable from workflow code
workflowcheck: tools
	$(GOBIN)/workflowcheck ./workflows/...

## bench-intake: load a running server (make dev in another terminal)
bench-intake:
	$(GO) run ./bench/intake -url http://127.0.0.1:8080 -n 5000 -rate 200 -db "$${DATABASE_URL:?set DATABASE_URL to the dev database}"

bench-export:
	$(GO) run ./bench/export

## faults: fault drills on loopback (kill -9 web and worker, PostgreSQL and Temporal restarts, dispatcher crash); PASS/FAIL each
faults: build
	$(GO) run ./bench/faults -relief ./bin/relief

clean:
	rm -rf bin web/static/vendor web/node_modules
