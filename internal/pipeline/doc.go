// Package pipeline wires one flow log together: a source (a capture file
// today; AF_PACKET and eBPF later) → decode → exclusions → flow table →
// records enriched from the inventory → a sink (stdout, directory in the
// S3 layout). It is the only package that imports the others.
package pipeline
