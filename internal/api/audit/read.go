package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/internal/api/iam/policy"
)

// Filter selects events; zero fields select everything.
type Filter struct {
	Since, Until time.Time
	// Principal matches the principal's ARN, its last name (user, role or
	// session name after the last /), or the access key id.
	Principal string
	// Action matches "Operation" or "service:Operation",
	// case-insensitively, with * and ? wildcards.
	Action string
	// Result is allowed, denied or error.
	Result string
}

// Match reports whether e passes f.
func (f Filter) Match(e Event) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if f.Result != "" && e.Result != f.Result {
		return false
	}
	if p := f.Principal; p != "" {
		arn := e.Principal
		last := arn[strings.LastIndexAny(arn, "/:")+1:]
		if p != arn && p != e.AccessKeyID && !strings.EqualFold(p, last) && !(strings.Contains(arn, ":assumed-role/") && strings.Contains(arn, "/"+p+"/")) {
			return false
		}
	}
	if a := strings.ToLower(f.Action); a != "" {
		full := strings.ToLower(e.Service + ":" + e.Action)
		if strings.Contains(a, ":") {
			return policy.Glob(a, full)
		}
		return policy.Glob(a, strings.ToLower(e.Action))
	}
	return true
}

// Files returns the trail's files oldest first: audit.log.N … audit.log.1,
// audit.log.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read audit dir: %w", err)
	}
	type rotated struct {
		n    int
		path string
	}
	var rs []rotated
	current := ""
	for _, e := range entries {
		name := e.Name()
		if name == FileName {
			current = filepath.Join(dir, name)
			continue
		}
		if s, ok := strings.CutPrefix(name, FileName+"."); ok {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				rs = append(rs, rotated{n, filepath.Join(dir, name)})
			}
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n })
	var out []string
	for _, r := range rs {
		out = append(out, r.path)
	}
	if current != "" {
		out = append(out, current)
	}
	return out, nil
}

// Read calls fn with every event of the trail in dir that f selects,
// oldest first, rotated files included. Lines that are not events (a line
// torn by a crash) are skipped and counted.
func Read(dir string, f Filter, fn func(Event) error) (skipped int, err error) {
	files, err := Files(dir)
	if err != nil {
		return 0, err
	}
	for _, path := range files {
		if !f.Since.IsZero() {
			// A file last written before Since holds nothing newer.
			if fi, err := os.Stat(path); err == nil && fi.ModTime().Before(f.Since) {
				continue
			}
		}
		n, err := readFile(path, f, fn)
		skipped += n
		if err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

func readFile(path string, f Filter, fn func(Event) error) (int, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // rotated away between listing and opening
	}
	if err != nil {
		return 0, fmt.Errorf("read audit log: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	skipped := 0
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Result == "" {
			skipped++
			continue
		}
		if f.Match(e) {
			if err := fn(e); err != nil {
				return skipped, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return skipped, fmt.Errorf("read audit log %s: %w", path, err)
	}
	return skipped, nil
}
