// Package analyze owns `flowlog analyze`: reading flow logs written by
// flowlog or downloaded from AWS (plain text with a header or a given
// format, gzip, CloudWatch Logs subscription JSON, Parquet, directory trees
// and S3 prefixes in the AWS layout, with time-range pruning by key), and
// the reports built on them — TCP conversations with their verdicts
// (Connections), rejected traffic (Rejected), top talkers (Top), record
// filtering with a small expression language (Filter, ParseExpr) and a
// summary of the evidence with its gaps (Summary).
//
// Reading is streaming and parallel per input; each report keeps only its
// groups or conversations in memory. Text lines go through Scanner, which
// parses only the columns a report needs and agrees with
// flow.Format.ParseRecord on them.
package analyze
