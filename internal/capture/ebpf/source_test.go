package ebpf

import (
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/capture"
)

var _ capture.Source = (*Source)(nil)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		key string
	}{
		{Config{Window: 7 * time.Second}, "window:"},
		{Config{Window: 1500 * time.Millisecond}, "window:"},
		{Config{MaxFlows: -1}, "max-flows:"},
		{Config{MaxInterfaces: 1 << 20}, "max-interfaces:"},
		{Config{Fragments: -5}, "fragments:"},
		{Config{Reject: "maybe"}, "reject:"},
		{Config{Attach: "xdp"}, "attach:"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.key) {
			t.Errorf("%+v: error %v, want one starting with %q", c.cfg, err, c.key)
		}
	}
}
