package postfixtest

import "syscall"

// syscallKill checks whether pid is alive (signal 0).
func syscallKill(pid int) error { return syscall.Kill(pid, 0) }
