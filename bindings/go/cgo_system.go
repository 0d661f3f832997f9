//go:build wsffi_system

package wsffi

// With the build tag wsffi_system the library and header are found through
// pkg-config (an installed wsffi.pc).

/*
#cgo pkg-config: wsffi
*/
import "C"
