//go:build unix

package keystore

import "syscall"

func syscallUmask(m int) int { return syscall.Umask(m) }
