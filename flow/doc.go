// Package flow owns the public value types of flowlog: the flow key, the
// record with every AWS VPC Flow Logs field (versions 2 to 8), and log
// formats: parsing and validating `${field}` formats, rendering records as
// AWS writes them, and parsing AWS record lines back.
//
// It imports nothing else from flowlog, so every other package (capture,
// aggregation, sinks, the analyzer) can share these types.
package flow
