//go:build !linux

package pcapfile

import "os"

// mapFile maps nothing here: NewFileReader streams.
func mapFile(*os.File) ([]byte, error) { return nil, nil }

func unmapFile([]byte) error { return nil }

func populate([]byte, int, int) {}

func release([]byte, int, int) {}
