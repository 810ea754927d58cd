//go:build cgo && !fleets_static

package fleets

// Links the shared libfleets found by pkg-config (fleets.pc, installed by the CMake build).

// #cgo pkg-config: fleets
import "C"
