package fleets

// LiveHandles is the number of C client handles not yet freed.
func LiveHandles() int64 { return liveHandles.Load() }

// ResultName is fleets_result_name: the library's name for a result code.
func ResultName(c Code) string { return resultName(c) }

// DeviceStatus is the FLEETS_EXECUTION_* value sent for s.
func DeviceStatus(s ExecutionStatus) (uint32, error) { return s.deviceStatus() }

// SetMaxResponseBytesResult is what fleets_config_set_max_response_bytes answers for n.
func SetMaxResponseBytesResult(n uint64) Code { return setMaxResponseBytesResult(n) }

// JSONArg is jsonArg: a JSON argument encoded and NUL-terminated for the C call.
func JSONArg(field string, v any, required bool) ([]byte, error) { return jsonArg(field, v, required) }
