package rig

// This file finds and ends the processes an sshd the rig started has
// forked for its sessions. Each is signalled by PID, and only while its
// start time still matches, so a reused PID is never hit; nothing else on
// the machine is touched.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc names one process: its PID and its start time, in clock ticks
// since boot, which tells it apart from a later process with the same PID.
type proc struct {
	pid   int
	start string
}

// procStat is the part of /proc/PID/stat the rig reads.
type procStat struct {
	proc
	ppid  int
	state string
}

// readStat reads /proc/PID/stat of pid.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	return parseStat(string(b))
}

// parseStat parses a /proc/PID/stat line, whose second field, the command
// name in parentheses, may hold spaces and parentheses.
func parseStat(line string) (procStat, bool) {
	open := strings.IndexByte(line, '(')
	end := strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return procStat{}, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return procStat{}, false
	}
	// After the name: state(3) ppid(4) … starttime(22).
	f := strings.Fields(line[end+1:])
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	return procStat{proc: proc{pid: pid, start: f[19]}, ppid: ppid,
		state: f[0]}, true
}

// descendants returns every live process below pid, found by walking the
// parent links in /proc, children before grandchildren.
func descendants(pid int) []proc {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	children := map[int][]proc{}
	for _, d := range dirs {
		n, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, ok := readStat(n); ok {
			children[st.ppid] = append(children[st.ppid], st.proc)
		}
	}

	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// alive reports whether p still runs: same PID, same start time, not a
// zombie.
func (p proc) alive() bool {
	st, ok := readStat(p.pid)
	return ok && st.start == p.start && st.state != "Z" && st.state != "X"
}

// signal sends sig to p if it is still the same process.
func (p proc) signal(sig syscall.Signal) {
	if p.alive() {
		syscall.Kill(p.pid, sig)
	}
}

// stopSessions sends SIGTERM to each of procs, then SIGKILL to those left
// after two seconds, and waits two more for them to go. A process blocked
// on a frozen filesystem dies only at the thaw.
func (s *SSHD) stopSessions(procs []proc) error {
	if len(procs) == 0 {
		return nil
	}
	s.logf("ending %d session processes of sshd pid %d", len(procs), s.PID)
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	if waitGone(procs, 2*time.Second) == nil {
		return nil
	}
	for _, p := range procs {
		p.signal(syscall.SIGKILL)
	}
	left := waitGone(procs, 2*time.Second)
	if len(left) == 0 {
		return nil
	}
	return fmt.Errorf("end sessions of sshd pid %d: pids %v still alive "+
		"after SIGKILL", s.PID, left)
}

// waitGone waits up to d for every one of procs to end and returns the
// PIDs still alive.
func waitGone(procs []proc, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, p := range procs {
			if p.alive() {
				left = append(left, p.pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}
