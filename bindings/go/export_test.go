package fleets

// LiveHandles is the number of C client handles not yet freed.
func LiveHandles() int64 { return liveHandles.Load() }

// ResultName is fleets_result_name: the library's name for a result code.
func ResultName(c Code) string { return resultName(c) }

// DeviceStatus is the FLEETS_EXECUTION_* value sent for s.
func DeviceStatus(s ExecutionStatus) (uint32, error) { return s.deviceStatus() }
