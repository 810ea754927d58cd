//go:build cgo

package fleets

// The Go functions libfleets calls back during a workflow (see workflows.go). A file with
// //export may only declare in its preamble.

/*
#include <fleets.h>
*/
import "C"

import (
	"encoding/json"
	"unsafe"
)

//export goFleetsDelta
func goFleetsDelta(key, value *C.char, user unsafe.Pointer) (accepted C.bool) {
	st := stateOf(user)
	if st.panicked != nil {
		return false
	}
	defer func() {
		if r := recover(); r != nil {
			st.panicked = r
			accepted = false
		}
	}()
	return C.bool(st.delta(C.GoString(key), json.RawMessage(C.GoString(value))))
}

//export goFleetsProgress
func goFleetsProgress(received, total C.uint64_t, user unsafe.Pointer) (goOn C.bool) {
	st := stateOf(user)
	defer func() {
		if r := recover(); r != nil {
			st.panicked = r
			goOn = false
		}
	}()
	return C.bool(st.progress(int64(received), int64(total)))
}

//export goFleetsJobStep
func goFleetsJobStep(s *C.fleets_job_step_t, user unsafe.Pointer) (result C.fleets_job_step_result) {
	st := stateOf(user)
	defer func() {
		if r := recover(); r != nil {
			if st.panicked == nil {
				st.panicked = r
			}
			result = C.fleets_job_step_result(StepRetry)
		}
	}()
	step := stepOf(s)
	outcome := st.handlers[step.Action](step)
	if step.Details != nil {
		if err := writeDetails(s, step.Details); err != nil {
			if st.err == nil {
				st.err = err
			}
			return C.fleets_job_step_result(StepRetry)
		}
	}
	return C.fleets_job_step_result(outcome)
}

//export goFleetsJobGate
func goFleetsJobGate(s *C.fleets_job_step_t, user unsafe.Pointer) (allowed C.bool) {
	st := stateOf(user)
	defer func() {
		if r := recover(); r != nil {
			if st.panicked == nil {
				st.panicked = r
			}
			allowed = false
		}
	}()
	return C.bool(st.gate(stepOf(s)))
}
