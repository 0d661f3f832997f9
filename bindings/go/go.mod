module github.com/wsffi/wsffi/bindings/go

go 1.23

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	go.uber.org/goleak v1.3.0
)
