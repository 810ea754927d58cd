//go:build !cgo

package fleets

// The fleets package calls the libfleets C library and cannot work without cgo. The
// undefined name below makes a CGO_ENABLED=0 build fail with a message that says so,
// instead of a confusing list of undefined names or a link failure.
var _ = fleets_requires_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler_see_README
