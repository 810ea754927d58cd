package fleets_test

import "syscall"

// sysProcAttr makes the emulator receive SIGTERM if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
