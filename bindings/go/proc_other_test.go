//go:build !linux

package fleets_test

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
