module github.com/wsffi/wsffi/bench/go

go 1.23

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/wsffi/wsffi/bindings/go v0.0.0
)

replace github.com/wsffi/wsffi/bindings/go => ../../bindings/go
