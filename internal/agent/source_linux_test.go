package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/capture/ebpf"
)

func TestSourceFallbacks(t *testing.T) {
	netlab.Require(t) // AF_PACKET sockets need CAP_NET_RAW
	cfg := Config{Source: "ebpf", FlowLogs: []FlowLog{{Destination: "/tmp/x"}}}.Defaults()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	never := func(ebpf.Config) (capture.Source, error) { t.Fatal("eBPF tried without BTF"); return nil, nil }

	src, kind, err := newSource(cfg, log, "/nonexistent/btf/vmlinux", never)
	if err != nil || kind != "afpacket" {
		t.Fatalf("no BTF: %v %s", err, kind)
	}
	src.Close()
	if !strings.Contains(logs.String(), "kernel without BTF: falling back to the AF_PACKET source") {
		t.Errorf("no warning: %s", logs.String())
	}

	logs.Reset()
	unsupported := func(ebpf.Config) (capture.Source, error) {
		return nil, errors.Join(ebpf.ErrUnsupported, errors.New("no TCX"))
	}
	src, kind, err = newSource(cfg, log, btfPath, unsupported)
	if err != nil || kind != "afpacket" || !strings.Contains(logs.String(), "cannot run the eBPF source") {
		t.Fatalf("unsupported: %v %s %s", err, kind, logs.String())
	}
	src.Close()

	denied := func(ebpf.Config) (capture.Source, error) {
		return nil, errors.Join(ebpf.ErrPermission, errors.New("operation not permitted"))
	}
	_, _, err = newSource(cfg, log, btfPath, denied)
	if err == nil || !errors.Is(err, ErrPrivilege) {
		t.Fatalf("denied: %v", err)
	}
	for _, want := range []string{"CAP_BPF", "CAP_NET_ADMIN", "--source afpacket", "CAP_NET_RAW"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %s", err, want)
		}
	}

	cfg.Source = "afpacket"
	src, kind, err = newSource(cfg, log, btfPath, never)
	if err != nil || kind != "afpacket" {
		t.Fatalf("afpacket: %v %s", err, kind)
	}
	src.Close()
}
