package ec2

import (
	"strings"

	"github.com/flowlog/flowlog/internal/api"
)

// match reports whether s matches the EC2 filter pattern p: * matches any
// run of characters, ? any one, and a backslash escapes the next
// character. Matching is case-sensitive, as EC2's.
func match(p, s string) bool {
	// Iterative glob with one backtrack point: linear enough for
	// patterns of filter size, and never recursive (fuzzed input).
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(p) {
			c := p[pi]
			switch {
			case c == '*':
				star, mark = pi, si
				pi++
				continue
			case c == '?':
				pi++
				si++
				continue
			case c == '\\' && pi+1 < len(p):
				if p[pi+1] == s[si] {
					pi += 2
					si++
					continue
				}
			case c == s[si]:
				pi++
				si++
				continue
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// fieldsFunc returns a resource's values for a filter name; known is
// false for a name the resource type has no filter of.
type fieldsFunc func(name string) (values []string, known bool)

// tagValues answers the tag:KEY and tag-key filters from tags.
func tagValues(name string, tags []Tag) ([]string, bool) {
	if name == "tag-key" {
		out := make([]string, len(tags))
		for i, t := range tags {
			out[i] = t.Key
		}
		return out, true
	}
	if key, ok := strings.CutPrefix(name, "tag:"); ok {
		var out []string
		for _, t := range tags {
			if t.Key == key {
				out = append(out, t.Value)
			}
		}
		return out, true
	}
	return nil, false
}

// matches reports whether a resource passes every filter (filters AND,
// values of one filter OR). An unknown filter name is an error.
func matches(filters []Filter, f fieldsFunc) (bool, error) {
	for _, flt := range filters {
		vals, known := f(flt.Name)
		if !known {
			return false, api.Errorf("InvalidParameterValue", "The filter '%s' is invalid", flt.Name)
		}
		ok := false
		for _, p := range flt.Values {
			for _, v := range vals {
				if match(p, v) {
					ok = true
					break
				}
			}
			if ok {
				break
			}
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// checkFilters refuses unknown filter names before any resource is read,
// so an empty result never hides a typo.
func checkFilters(filters []Filter, f fieldsFunc) error {
	for _, flt := range filters {
		if _, known := f(flt.Name); !known {
			return api.Errorf("InvalidParameterValue", "The filter '%s' is invalid", flt.Name)
		}
		if len(flt.Values) == 0 {
			return api.Errorf("InvalidParameterValue", "The filter '%s' has no values: give at least one Filter.N.Value.M", flt.Name)
		}
	}
	return nil
}
