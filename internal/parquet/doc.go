// Package parquet owns the Parquet form of flow log records: the schema AWS
// writes for a log format (Columns, Schema), a Writer that turns records
// into a Parquet file, and a Reader that turns Parquet flow log files,
// written by AWS or by flowlog, back into records.
//
// The schema follows AWS (spec §5): one top-level optional column per field
// of the format, in format order, named after the field with '-' replaced by
// '_'; INT32 for version, srcport, dstport, protocol, tcp-flags and
// traffic-path, INT64 for packets, bytes, start and end, and a UTF-8 string
// (BYTE_ARRAY with the STRING logical type) for every other field. A value
// the text form writes as "-" is a null, so a Parquet file and a text object
// of the same records hold the same values.
//
// The package builds on github.com/parquet-go/parquet-go; it is named after
// the format, so callers that use both import this one under another name.
package parquet
