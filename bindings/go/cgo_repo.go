//go:build !wsffi_system

package wsffi

// Inside the wsffi repository: the header from ../../include and the release
// library from ../../target/release (run `cargo build --release` first), found
// at run time through an rpath, so nothing needs installing.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lwsffi -Wl,-rpath,${SRCDIR}/../../target/release
*/
import "C"
