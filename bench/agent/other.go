//go:build !linux

package main

import "errors"

var errLinux = errors.New("needs Linux (network namespaces, veth, AF_PACKET)")

func run([]string) error   { return errLinux }
func flood([]string) error { return errLinux }
func sink([]string) error  { return errLinux }
