// Package flow owns the public value types of flowlog: the flow key, the
// record with every AWS VPC Flow Logs field (versions 2 to 8), and log
// formats: parsing and validating `${field}` formats (ParseFormat, strict,
// as CreateFlowLogs checks them; ParseHeader, lenient, for reading logs
// with fields flowlog does not know), rendering records as AWS writes them
// (Format.Append, Format.AppendJSON), parsing AWS record lines back
// (Format.ParseRecord), and reading whole flow log files and streams —
// plain or gzip text objects, concatenated objects, CloudWatch Logs
// subscription documents — record by record (Reader).
//
// It imports nothing else from flowlog, so every other package (capture,
// aggregation, sinks, the analyzer) can share these types.
package flow
