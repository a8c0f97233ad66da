package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink/kafka"
)

// kafkaPingTimeout bounds connecting to the brokers before a capture is
// read: a wrong CA, client certificate or password fails the command at
// once, explained, instead of after the records' delivery timeout.
// Brokers that are down are no reason to stop (a spool delivers later).
const kafkaPingTimeout = 5 * time.Second

// openKafkaDestination opens --dest
// kafka://host:port[,host:port]/topic[?tls=true&sasl=…]: one message per
// record, the record line in --format as value and its interface id as
// key. TLS files and SASL credentials come from FLOWLOG_KAFKA_* variables.
func openKafkaDestination(cfg pipeline.ReadConfig, location string) (destination, error) {
	tg, err := kafka.ParseTarget(location)
	if err != nil {
		return destination{}, usageError{err}
	}
	sec := tg.Security.FromEnv(os.Getenv)
	if err := sec.Validate(); err != nil {
		return destination{}, usageError{err}
	}
	s, err := kafka.New(kafka.Config{Brokers: tg.Brokers, Topic: tg.Topic, Format: cfg.Format, Security: sec})
	if err != nil {
		return destination{}, err
	}
	if w := sec.Warning(); w != "" {
		fmt.Fprintf(os.Stderr, "flowlog: warning: %s\n", w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkaPingTimeout)
	defer cancel()
	if err := s.Ping(ctx); err != nil && kafka.IsSecurityError(err) {
		s.Abort()
		s.Close()
		return destination{}, err
	}
	return destination{sink: s}, nil
}
