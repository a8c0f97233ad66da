package ebpf

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
)

// mustRun reports whether a missing kernel feature or privilege must fail
// the test instead of skipping it: always in CI, and when
// FLOWLOG_REQUIRE_EBPF=1.
func mustRun() bool {
	return os.Getenv("CI") == "true" || os.Getenv("FLOWLOG_REQUIRE_EBPF") == "1"
}

// skipOrFail skips with the reason, or fails in CI.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if mustRun() {
		t.Fatalf("required in CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// requireBPF skips (fails in CI) unless the process may load TC programs.
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "loading BPF programs needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")
	}
	if err := features.HaveProgramType(ebpf.SchedCLS); err != nil {
		skipOrFail(t, "kernel cannot load TC (sched_cls) programs: %v", err)
	}
}

// requireBTF skips (fails in CI) unless the kernel has BTF, which the drop
// tracepoint needs.
func requireBTF(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		skipOrFail(t, "kernel has no BTF (/sys/kernel/btf/vmlinux): %v", err)
	}
}

// testTimeout bounds every test that creates a Source: a hang (a socket
// that never answers, a namespace that never goes quiet) ends the test
// binary with a stack dump instead of waiting for go test's global timeout.
const testTimeout = 90 * time.Second

// newSource creates a Source for a test and closes it at the end.
func newSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	name := t.Name()
	watchdog := time.AfterFunc(testTimeout, func() {
		panic(fmt.Sprintf("%s: still running after %v", name, testTimeout))
	})
	t.Cleanup(func() { watchdog.Stop() })
	s, err := New(cfg)
	if errors.Is(err, ErrUnsupported) {
		skipOrFail(t, "eBPF source unsupported: %v", err)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// testPrograms loads a copy of the TC programs for interface id without
// attaching them, for BPF_PROG_TEST_RUN.
func testPrograms(t testing.TB, s *Source, id uint32, slot uint32) (ingress, egress *ebpf.Program) {
	t.Helper()
	spec := s.spec.Copy()
	if err := spec.Variables["attach_id"].Set(id); err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["iface_slot"].Set(slot); err != nil {
		t.Fatal(err)
	}
	var progs struct {
		Ingress *ebpf.Program `ebpf:"tc_ingress"`
		Egress  *ebpf.Program `ebpf:"tc_egress"`
	}
	if err := spec.LoadAndAssign(&progs, &ebpf.CollectionOptions{MapReplacements: s.mapReplacements()}); err != nil {
		t.Fatalf("load TC programs: %v", err)
	}
	t.Cleanup(func() { progs.Ingress.Close(); progs.Egress.Close() })
	return progs.Ingress, progs.Egress
}

// claimSlot marks a lost-array slot as used by id, as Attach would, so that
// Drain reports its losses.
func claimSlot(s *Source, id uint32, idx int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slots[idx] = slot{id: id, used: true, base: s.slots[idx].base}
}

// clearFragments forgets every remembered first fragment.
func clearFragments(t testing.TB, s *Source) {
	t.Helper()
	var k flowlogFragKey
	var keys []flowlogFragKey
	var v flowlogFragPorts
	it := s.objs.Frags.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	for i := range keys {
		_ = s.objs.Frags.Delete(&keys[i])
	}
}
