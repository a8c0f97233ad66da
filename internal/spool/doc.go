// Package spool owns delivery without loss: a durable on-disk spool that
// every destination is wrapped in, and the retry loop that drains it.
//
// A Spool is a decorator: it implements the pipeline's Sink interface
// (Write, Advance, Close) in front of any destination Sink. Write and
// Advance append the closed records and watermarks to segment files in a
// directory; a record counts as produced once it is there. A delivery
// goroutine reads the segments in order and hands them to the
// destination, retrying with exponential backoff and jitter while the
// destination fails, and persists how far the destination has
// acknowledged (an ack file replaced atomically). After a restart the
// unacknowledged part is delivered again, so every record reaches the
// destination at least once; deterministic object names make a repeated
// S3 PUT overwrite rather than duplicate.
//
// The spool is bounded by Config.MaxBytes. A batch that does not fit, or
// that the disk refuses (ENOSPC), is dropped whole and replaced by
// SKIPDATA records for its interfaces and windows, which are spooled and
// delivered like any record, and counted in Stats: loss is never silent,
// memory never grows without bound. Every entry carries a CRC-32C; a
// corrupt segment is detected, moved aside to quarantine/, reported, and
// its intact entries are spooled again.
//
// On-disk format and durability are described in format.go and at
// Config.Sync.
package spool
