package main

import (
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/sink/kafka"
)

// openKafkaDestination opens --dest kafka://host:port[,host:port]/topic:
// one message per record, the record line in --format as value and its
// interface id as key.
func openKafkaDestination(cfg pipeline.ReadConfig, location string) (destination, error) {
	brokers, topic, err := kafka.ParseLocation(location)
	if err != nil {
		return destination{}, usageError{err}
	}
	s, err := kafka.New(kafka.Config{Brokers: brokers, Topic: topic, Format: cfg.Format})
	if err != nil {
		return destination{}, err
	}
	return destination{sink: s}, nil
}
