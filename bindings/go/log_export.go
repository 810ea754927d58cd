//go:build cgo

package fleets

// A file with //export may only declare in its preamble; log.go holds the C trampoline.

/*
#include <fleets.h>
*/
import "C"

import "unsafe"

// fleetsGoLog is the Go end of libfleets' log callback (see log.go). user is always NULL.
//
//export fleetsGoLog
func fleetsGoLog(level C.fleets_log_level, message *C.char, _ unsafe.Pointer) {
	logMessage(uint32(level), C.GoString(message))
}
