//go:build cgo

package fleets

/*
#include <fleets.h>

// fleetsGoLog is exported by log_export.go; cgo declares exported functions with char *.
extern void fleetsGoLog(fleets_log_level level, char *message, void *user);

// The callback libfleets calls, with its const char * signature.
static void fleets_go_log(fleets_log_level level, const char *message, void *user) {
	fleetsGoLog(level, (char *)message, user);
}

// user is always NULL: the Go side reads the current logger from a package variable, so no
// Go pointer or handle crosses into C and none can be freed while a thread is logging.
static fleets_result fleets_go_set_log_callback(fleets_log_level max_level) {
	return fleets_set_log_callback(max_level, max_level == FLEETS_LOG_OFF ? NULL : fleets_go_log, NULL);
}
*/
import "C"

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// The FLEETS_LOG_* values (codes_cgo.go checks them against fleets.h).
const (
	logOff   uint32 = 0 // FLEETS_LOG_OFF
	logError uint32 = 1 // FLEETS_LOG_ERROR
	logWarn  uint32 = 2 // FLEETS_LOG_WARN
	logInfo  uint32 = 3 // FLEETS_LOG_INFO
	logDebug uint32 = 4 // FLEETS_LOG_DEBUG
)

var (
	// currentLogger receives libfleets' messages; nil when logging is off. The C callback
	// reads it on every message, so a message in flight while SetLogger runs goes to the
	// logger current at that moment, or nowhere.
	currentLogger atomic.Pointer[slog.Logger]
	setLoggerMu   sync.Mutex // serializes SetLogger
)

// SetLogger sends libfleets' log messages at level and above to logger
// (fleets_set_log_callback); a nil logger turns logging off, which is the default: libfleets
// logs nothing and never writes to stderr by itself.
//
// The levels map as FLEETS_LOG_ERROR -> slog.LevelError (a call failed because of a bug or
// resource exhaustion), FLEETS_LOG_WARN -> slog.LevelWarn (a call failed: transport failure
// or HTTP error status), FLEETS_LOG_INFO -> slog.LevelInfo (retries with their wait, resends
// after a stale keep-alive connection, new connections) and FLEETS_LOG_DEBUG ->
// slog.LevelDebug (every request: method, path, status, time). A level above
// slog.LevelError turns logging off. The logger's handler still filters with its own level.
//
// Each message is one printable line and never contains the API secret. It is logged
// synchronously on the goroutine that made the call, by several goroutines at once when
// several call: the handler must be safe for concurrent use (slog's are) and should be
// quick. A handler that panics does not break the call (the panic is dropped). SetLogger is
// process-wide and safe to call at any time; a later call replaces the earlier one.
func SetLogger(logger *slog.Logger, level slog.Level) {
	setLoggerMu.Lock()
	defer setLoggerMu.Unlock()
	lib := libLevel(level)
	if logger == nil || lib == logOff {
		C.fleets_go_set_log_callback(C.fleets_log_level(logOff))
		currentLogger.Store(nil)
		return
	}
	currentLogger.Store(logger)
	// Cannot fail: max is a valid level.
	C.fleets_go_set_log_callback(C.fleets_log_level(lib))
}

// libLevel is the most verbose libfleets level whose messages pass level.
func libLevel(level slog.Level) uint32 {
	switch {
	case level <= slog.LevelDebug:
		return logDebug
	case level <= slog.LevelInfo:
		return logInfo
	case level <= slog.LevelWarn:
		return logWarn
	case level <= slog.LevelError:
		return logError
	}
	return logOff
}

// slogLevel is the slog level of a libfleets message.
func slogLevel(level uint32) slog.Level {
	switch level {
	case logError:
		return slog.LevelError
	case logWarn:
		return slog.LevelWarn
	case logInfo:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// logMessage hands one libfleets message to the current logger. It runs inside a C call:
// a panic must not unwind through C frames, so it is recovered and dropped.
func logMessage(level uint32, message string) {
	logger := currentLogger.Load()
	if logger == nil {
		return
	}
	defer func() { _ = recover() }()
	ctx := context.Background()
	l := slogLevel(level)
	if logger.Enabled(ctx, l) {
		logger.Log(ctx, l, message)
	}
}
