# Go binding (bindings/go): vet and race-enabled tests against target/release.
GO ?= go

.PHONY: test-go
test-go: lib
	cd bindings/go && $(GO) vet ./... && $(GO) test -race -count=1 ./...
