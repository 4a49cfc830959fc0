package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clockTick is Linux's USER_HZ, the unit of CPU times in /proc.
const clockTick = 100

// ProcessCPU is the user plus system CPU time process pid has used, from
// /proc/<pid>/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return ticks(pid, f, 11, 12) // utime, stime
}

// statFields returns the fields of /proc/pid/stat after the command name,
// which is in parentheses and may hold spaces: field 3 (state) is [0].
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f, nil
}

// ticks adds up the clock-tick fields at idx of a stat line.
func ticks(pid int, f []string, idx ...int) (time.Duration, error) {
	var sum int64
	for _, k := range idx {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
		}
		sum += v
	}
	return time.Duration(sum) * time.Second / clockTick, nil
}

// SelfCPU is the CPU time this process has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Memory is a process's resident set from /proc/<pid>/status, in KiB: now
// (VmRSS), at its peak (VmHWM), and the anonymous part of now (RssAnon:
// heap and stacks, without the executable's pages and mapped files); and
// its proportional set size from /proc/<pid>/smaps_rollup (Pss: shared
// pages divided among the processes that map them).
type Memory struct{ RSS, Peak, Anon, PSS int64 }

// ProcessMemory reads pid's resident memory.
func ProcessMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, l := range bytes.Split(data, []byte("\n")) {
		for prefix, dst := range map[string]*int64{"VmRSS:": &m.RSS, "VmHWM:": &m.Peak, "RssAnon:": &m.Anon} {
			if v, ok := bytes.CutPrefix(l, []byte(prefix)); ok {
				*dst, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			}
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, l := range bytes.Split(rollup, []byte("\n")) {
			if v, ok := bytes.CutPrefix(l, []byte("Pss:")); ok {
				m.PSS, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(v)), " kB"), 10, 64)
			}
		}
	}
	return m, nil
}

// TreeCPU is the CPU time of pid and of all its descendants, those still
// running and those it has reaped (cutime, cstime): for a Postfix master,
// whose daemons come and go, the whole instance's CPU.
func TreeCPU(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	total, err := ticks(pid, f, 11, 12, 13, 14) // utime, stime, cutime, cstime
	if err != nil {
		return 0, err
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if cf, err := statFields(child); err == nil && cf[1] == strconv.Itoa(pid) { // [1]: ppid
			if c, err := TreeCPU(child); err == nil {
				total += c
			}
		}
	}
	return total, nil
}

// RaiseFileLimit raises this process's open-file limit (RLIMIT_NOFILE) to
// at least n, and the hard limit with it when allowed (root). Processes it
// starts inherit it.
func RaiseFileLimit(n uint64) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading the open-file limit: %w", err)
	}
	if lim.Cur >= n {
		return nil
	}
	lim.Cur = n
	lim.Max = max(lim.Max, n)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open-file limit to %d: %w", n, err)
	}
	return nil
}
