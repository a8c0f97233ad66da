//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// orphanGrace is how long a job's orphaned processes may run after the job's
// script has exited.
const orphanGrace = 10 * time.Minute

// sampleEvery is the period of the private-memory samples.
const sampleEvery = 2 * time.Millisecond

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// Usage is what the kernel accounted for one run: the job's processes,
// every descendant included, as wait4 reports them.
type Usage struct {
	Wall time.Duration `json:"wall_ns"`
	User time.Duration `json:"user_ns"`
	Sys  time.Duration `json:"sys_ns"`
	// MaxRSS is the peak resident set of the largest single process of the
	// job (ru_maxrss), in bytes. It includes file pages mapped into the
	// process: a tool that maps its capture (flowlog does) counts it.
	MaxRSS int64 `json:"max_rss"`
	// PeakPrivate is the largest sum, over the job's processes, of their
	// anonymous and shared-memory resident pages (RssAnon + RssShmem in
	// /proc/PID/status): memory the job allocated, without mapped files.
	// It is sampled every sampleEvery, so a run shorter than that may
	// show 0 and a brief peak may be missed.
	PeakPrivate int64 `json:"peak_private"`
	Samples     int   `json:"samples"`
}

// CPU is user + system time.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// launchFlag makes the command a launcher (see launch).
const launchFlag = "-launch"

// runJob runs a tool's script to completion through a fresh launcher
// process and returns the launcher's accounting of it.
//
// Why a launcher: Linux starts a new program's ru_maxrss at the peak RSS of
// the process that exec'd it (exec keeps the old memory's high-water mark),
// so a job started straight from this process, which holds every parsed
// flow of the previous inputs, would inherit hundreds of MiB. The launcher
// is this binary started afresh (a few MiB); it reports only its
// children's usage.
func runJob(ctx context.Context, script string, args, env []string, stdout, stderr io.Writer) (Usage, error) {
	self, err := os.Executable()
	if err != nil {
		return Usage{}, err
	}
	f, err := os.CreateTemp("", "peers-usage-*.json")
	if err != nil {
		return Usage{}, err
	}
	usagePath := f.Name()
	f.Close()
	defer os.Remove(usagePath)
	cmd := exec.CommandContext(ctx, self, append([]string{launchFlag, usagePath, "bash", script}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	werr := cmd.Run()
	var u Usage
	b, err := os.ReadFile(usagePath)
	if err == nil && len(b) > 0 {
		err = json.Unmarshal(b, &u)
	}
	if werr != nil {
		return u, fmt.Errorf("%s: %w", script, werr)
	}
	if err != nil || len(b) == 0 {
		return u, fmt.Errorf("%s: the launcher reported no usage (%v)", script, err)
	}
	return u, nil
}

// launch runs one job (args: usage file, command…) and writes its Usage as
// JSON to the usage file; it exits with the job's status. It becomes a
// child subreaper, so processes the job leaves behind (pmacctd's plugin
// writes its file after the core exits) are waited for too: their CPU time
// is counted and the run ends only when they have finished.
func launch(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "peers -launch: want a usage file and a command")
		return 2
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "peers -launch: prctl PR_SET_CHILD_SUBREAPER:", errno)
		return 2
	}
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	began := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "peers -launch:", err)
		return 2
	}
	stopSampling := make(chan struct{})
	sampled := make(chan [2]int64)
	go samplePrivate(stopSampling, sampled)
	werr := cmd.Wait()
	var u Usage
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.add(ru)
	}
	// Orphans: wait for every remaining descendant (polling, so one that
	// never exits is killed after orphanGrace instead of hanging the run).
	status := cmd.ProcessState.ExitCode()
	deadline := time.Now().Add(orphanGrace)
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			break // ECHILD: none left
		}
		if pid > 0 {
			u.add(&ru)
			continue
		}
		if time.Now().After(deadline) {
			// The job shares this process group: record what was measured,
			// then end the group, this launcher included.
			fmt.Fprintf(os.Stderr, "peers -launch: a process of the job was still running %v after the job exited; killed\n", orphanGrace)
			u.Wall = time.Since(began)
			b, _ := json.Marshal(u)
			os.WriteFile(args[0], b, 0o644)
			syscall.Kill(-syscall.Getpgrp(), syscall.SIGKILL)
		}
		time.Sleep(time.Millisecond)
	}
	u.Wall = time.Since(began)
	close(stopSampling)
	peak := <-sampled
	u.PeakPrivate, u.Samples = peak[0], int(peak[1])
	b, _ := json.Marshal(u)
	if err := os.WriteFile(args[0], b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "peers -launch:", err)
		return 2
	}
	if werr != nil && status == 0 {
		status = 1
	}
	return status
}

func (u *Usage) add(ru *syscall.Rusage) {
	u.User += time.Duration(ru.Utime.Nano())
	u.Sys += time.Duration(ru.Stime.Nano())
	u.MaxRSS = max(u.MaxRSS, ru.Maxrss*1024)
}

// samplePrivate sums RssAnon + RssShmem over this process's descendants
// (found through /proc/PID/task/TID/children, so only the job's few
// processes are read) every sampleEvery until stop is closed, and sends the
// largest sum and the number of samples.
func samplePrivate(stop <-chan struct{}, result chan<- [2]int64) {
	self := os.Getpid()
	var peak, samples int64
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			result <- [2]int64{peak, samples}
			return
		case <-t.C:
		}
		var sum int64
		pids := descendants(self)
		if len(pids) == 0 {
			continue // not started yet, or already gone: no sample
		}
		for _, pid := range pids {
			status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && (k == "RssAnon" || k == "RssShmem") {
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					sum += kb << 10
				}
			}
		}
		peak = max(peak, sum)
		samples++
	}
}

// descendants lists the processes below pid, children of any of its
// threads included.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, c := range bytes.Fields(b) {
				if n, err := strconv.Atoi(string(c)); err == nil {
					out = append(out, n)
					queue = append(queue, n)
				}
			}
		}
	}
	return out
}
