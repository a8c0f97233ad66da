package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/capture/afpacket"
	"github.com/flowlog/flowlog/internal/capture/ebpf"
)

// ErrPrivilege is wrapped by errors of a source the process may not use.
var ErrPrivilege = errors.New("not permitted")

// btfPath is where the kernel exposes its BTF type information.
const btfPath = "/sys/kernel/btf/vmlinux"

// NewSource creates the capture source cfg.Source names. An eBPF source
// on a kernel without BTF, or one that lacks what the programs need, falls
// back to AF_PACKET with a warning; missing privileges are an error that
// names the capabilities. It returns the source and the kind in use.
func NewSource(cfg Config, log *slog.Logger) (capture.Source, string, error) {
	return newSource(cfg, log, btfPath, func(c ebpf.Config) (capture.Source, error) {
		src, err := ebpf.New(c)
		if err != nil {
			return nil, err
		}
		if rerr := src.RejectError(); rerr != nil {
			log.Warn("packets dropped by the packet filter are not recorded as REJECT", "reason", rerr)
		}
		return src, nil
	})
}

// newSource is NewSource with the BTF file and the eBPF constructor as
// parameters, so the fallbacks can be tested on any kernel.
func newSource(cfg Config, log *slog.Logger, btf string, newEBPF func(ebpf.Config) (capture.Source, error)) (capture.Source, string, error) {
	if cfg.Source == "ebpf" {
		if _, err := os.Stat(btf); err != nil {
			log.Warn("kernel without BTF: falling back to the AF_PACKET source (every record is ACCEPT: AF_PACKET does not see packet filter drops)",
				"missing", btf)
			return newAFPacket(cfg, log)
		}
		src, err := newEBPF(cfg.EBPF)
		switch {
		case err == nil:
			return src, "ebpf", nil
		case errors.Is(err, ebpf.ErrPermission):
			return nil, "", fmt.Errorf("source ebpf: %w: loading BPF programs needs root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; run as root, grant them (setcap cap_bpf,cap_perfmon,cap_net_admin+ep), or use --source afpacket, which needs only CAP_NET_RAW: %v", ErrPrivilege, err)
		case errors.Is(err, ebpf.ErrUnsupported):
			log.Warn("this kernel cannot run the eBPF source: falling back to AF_PACKET (every record is ACCEPT)", "reason", err)
			return newAFPacket(cfg, log)
		}
		return nil, "", fmt.Errorf("source ebpf: %w", err)
	}
	return newAFPacket(cfg, log)
}

func newAFPacket(cfg Config, log *slog.Logger) (capture.Source, string, error) {
	// Fail now, not on every interface, when packet sockets are refused.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, "", fmt.Errorf("source afpacket: %w: packet sockets need CAP_NET_RAW; run as root or grant it (setcap cap_net_raw+ep): %v", ErrPrivilege, err)
		}
		return nil, "", fmt.Errorf("source afpacket: open packet socket: %w", err)
	}
	unix.Close(fd)
	src, err := afpacket.New(cfg.AFPacket)
	if err != nil {
		return nil, "", fmt.Errorf("source afpacket: %w", err)
	}
	log.Info("AF_PACKET source: packets dropped by the packet filter are not seen, every record is ACCEPT")
	return src, "afpacket", nil
}
