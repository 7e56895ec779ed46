package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ), 100 on Linux everywhere.
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time spent so far by this process (embedded Temporal server,
// worker, SDK and client), by the PostgreSQL server and its backends, and by the machine.
type cpuSample struct {
	self, postgres     time.Duration
	machineBusy, total time.Duration
}

// sampleCPU reads the CPU times; postgres is found as the process listening on port
// ("-p PORT" on its command line) plus its children, living (utime+stime) and ended
// (cutime+cstime, which the postmaster collects when a backend exits).
func sampleCPU(port int) cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if stat, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := bytes.Cut(stat, []byte("\n"))
		fields := strings.Fields(string(line))[1:]
		for i, f := range fields {
			v, _ := strconv.ParseInt(f, 10, 64)
			s.total += time.Duration(v) * clockTick
			if i != 3 && i != 4 { // idle, iowait
				s.machineBusy += time.Duration(v) * clockTick
			}
		}
	}
	master := postmaster(port)
	if master == 0 {
		return s
	}
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range pids {
		pid, ppid, utime, stime, cutime, cstime, ok := procStat(dir)
		if !ok {
			continue
		}
		switch {
		case pid == master:
			s.postgres += utime + stime + cutime + cstime
		case ppid == master:
			s.postgres += utime + stime
		}
	}
	return s
}

// postmaster returns the PID of the postgres server listening on port, or 0.
func postmaster(port int) int {
	want := "\x00-p\x00" + strconv.Itoa(port) + "\x00"
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte("postgres")) || !bytes.Contains(append(cmd, 0), []byte(want)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(dir)); err == nil {
			return pid
		}
	}
	return 0
}

// procStat reads a process's parent and CPU times from /proc/PID/stat.
func procStat(dir string) (pid, ppid int, utime, stime, cutime, cstime time.Duration, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return
	}
	// The command name is in parentheses and may hold spaces: fields start after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return
	}
	pid, _ = strconv.Atoi(filepath.Base(dir))
	ppid, _ = strconv.Atoi(f[1])
	tick := func(s string) time.Duration { v, _ := strconv.ParseInt(s, 10, 64); return time.Duration(v) * clockTick }
	return pid, ppid, tick(f[11]), tick(f[12]), tick(f[13]), tick(f[14]), true
}

// sub returns the CPU spent between two samples.
func (s cpuSample) sub(before cpuSample) cpuSample {
	return cpuSample{
		self: s.self - before.self, postgres: s.postgres - before.postgres,
		machineBusy: s.machineBusy - before.machineBusy, total: s.total - before.total,
	}
}

// busy is the share of the machine's CPU time that was busy.
func (s cpuSample) busy() float64 { return s.machineBusy.Seconds() / max(s.total.Seconds(), 1e-9) }

// postgresBound is the least wall time the work measured by run can take on this
// machine if the engine costs at least the CPU the floor's run did: the floor's CPU in
// this process plus the CPU run spent in PostgreSQL (which the floor, with no target,
// does not spend), on every core this process may use, all busy. It is what the target's
// own work costs a ratio to the floor here, whatever the engine does.
func postgresBound(floor, run cpuSample) time.Duration {
	return (floor.self + run.postgres) / time.Duration(runtime.NumCPU())
}

// writeCPU prints the CPU the floor's run and the run named run spent in this process,
// and the CPU run spent in PostgreSQL, which the floor does not use.
func writeCPU(run string, floor, cpu cpuSample) {
	fmt.Printf("CPU: the floor used %.1f core-s in this process (machine busy %.0f%%); %s %.1f core-s in this process (%.2f times) and %.1f core-s in PostgreSQL\n",
		floor.self.Seconds(), 100*floor.busy(), run, cpu.self.Seconds(), cpu.self.Seconds()/max(floor.self.Seconds(), 1e-9), cpu.postgres.Seconds())
}
