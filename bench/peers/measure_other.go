//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
	"time"
)

// Usage is what the kernel accounted for one run (Linux only).
type Usage struct {
	Wall        time.Duration `json:"wall_ns"`
	User        time.Duration `json:"user_ns"`
	Sys         time.Duration `json:"sys_ns"`
	MaxRSS      int64         `json:"max_rss"`
	PeakPrivate int64         `json:"peak_private"`
	Samples     int           `json:"samples"`
}

// CPU is user + system time.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

var errLinuxOnly = errors.New("the peer benchmark runs on Linux only (wait4 accounting, Debian peers)")

const launchFlag = "-launch"

func launch([]string) int { return 2 }

func runJob(context.Context, string, []string, []string, io.Writer, io.Writer) (Usage, error) {
	return Usage{}, errLinuxOnly
}
