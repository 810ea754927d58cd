//go:build cgo && fleets_static

package fleets

// With -tags fleets_static, links libfleets.a through pkg-config (fleets-static.pc,
// installed by the CMake build): the program does not need libfleets.so at run time.

// #cgo pkg-config: fleets-static
import "C"
