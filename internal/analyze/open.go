package analyze

import (
	"context"
	"fmt"
	"io"
)

// Open returns the bytes of the input as the reports read them (before
// decompression): for a Kafka topic, the message values fixed at the
// listing, a line each. It is for callers that keep what an input holds,
// as the console keeps the first messages of a topic for the reports of
// one page; the reports themselves open their inputs.
func (in Input) Open(ctx context.Context) (io.ReadCloser, error) {
	if in.src == nil {
		return nil, fmt.Errorf("open %s: not a listed input", in.Name)
	}
	return in.src.open(ctx)
}
