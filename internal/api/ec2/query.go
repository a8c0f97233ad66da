package ec2

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/flowlog/flowlog/internal/api"
)

// The EC2 Query protocol flattens lists: ResourceId.1, ResourceId.2, …;
// a list of structures numbers its members: Filter.1.Name,
// Filter.1.Value.1. These helpers read that shape back. Indexes start at
// 1 and need not be contiguous (AWS SDKs never skip, people do).

// maxIndex bounds N in a Name.N parameter: more list members than this in
// one request is a client error, not an allocation.
const maxIndex = 10000

// params wraps a Query request's parameters.
type params url.Values

// str returns the single value of name ("" when absent).
func (p params) str(name string) string {
	if v := p[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (p params) has(name string) bool { _, ok := p[name]; return ok }

// boolean reads an optional true/false parameter.
func (p params) boolean(name string) (bool, error) {
	v, ok := p[name]
	if !ok || len(v) == 0 {
		return false, nil
	}
	switch strings.ToLower(v[0]) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, api.Errorf("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected: 'true' or 'false'.", v[0], name)
}

// integer reads an optional integer parameter; set reports whether it
// was given.
func (p params) integer(name string) (n int64, set bool, err error) {
	v, ok := p[name]
	if !ok || len(v) == 0 {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
	if perr != nil {
		return 0, true, api.Errorf("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected an integer.", v[0], name)
	}
	return n, true, nil
}

// list returns the values of prefix.N in the order of N.
func (p params) list(prefix string) ([]string, error) {
	idx, err := p.indexes(prefix, true)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, p.str(prefix+"."+strconv.Itoa(i)))
	}
	return out, nil
}

// indexes returns the sorted distinct N of parameters named prefix.N
// (leaf) or prefix.N.… (!leaf).
func (p params) indexes(prefix string, leaf bool) ([]int, error) {
	var idx []int
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, hasSub := strings.Cut(rest, ".")
		if hasSub == leaf {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || num[0] == '0' || num[0] == '+' {
			return nil, api.Errorf("InvalidParameterValue", "Parameter %s is invalid: %q is not a list index (1, 2, …)", k, num)
		}
		if n > maxIndex {
			return nil, api.Errorf("InvalidParameterValue", "Parameter %s is invalid: list index %d is above %d", k, n, maxIndex)
		}
		if !seen[n] {
			seen[n] = true
			idx = append(idx, n)
		}
	}
	slices.Sort(idx)
	return idx, nil
}

// groups returns the members of a list of structures, prefix.N.Member,
// as N → (Member → values), with the sorted Ns; one pass over the
// parameters, so a request with many members costs linear time.
func (p params) groups(prefix string) (map[int]params, []int, error) {
	idx, err := p.indexes(prefix, false)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[int]params, len(idx))
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, member, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(num) // checked by indexes
		g := out[n]
		if g == nil {
			g = params{}
			out[n] = g
		}
		g[member] = v
	}
	return out, idx, nil
}

// Filter is one Filter.N of a Describe call: the name and the values,
// any of which may match (EC2 wildcards * and ? allowed).
type Filter struct {
	Name   string
	Values []string
}

// filters reads Filter.N.Name / Filter.N.Value.M.
func (p params) filters() ([]Filter, error) {
	g, idx, err := p.groups("Filter")
	if err != nil {
		return nil, err
	}
	var out []Filter
	for _, i := range idx {
		s := g[i]
		name := s.str("Name")
		if name == "" {
			return nil, api.Errorf("InvalidParameterValue", "The filter 'null' is invalid: Filter.%d.Name is missing", i)
		}
		vals, err := s.list("Value")
		if err != nil {
			return nil, err
		}
		out = append(out, Filter{Name: name, Values: vals})
	}
	return out, nil
}

// Tag is a key/value tag.
type Tag struct {
	Key   string `xml:"key" json:"key"`
	Value string `xml:"value" json:"value"`
}

// TagSpecification tags the resources a call creates.
type TagSpecification struct {
	ResourceType string
	Tags         []Tag
}

// tagSpecifications reads TagSpecification.N.ResourceType and
// TagSpecification.N.Tag.M.Key/Value.
func (p params) tagSpecifications() ([]TagSpecification, error) {
	g, idx, err := p.groups("TagSpecification")
	if err != nil {
		return nil, err
	}
	var out []TagSpecification
	for _, i := range idx {
		s := g[i]
		ts := TagSpecification{ResourceType: s.str("ResourceType")}
		tg, tidx, err := s.groups("Tag")
		if err != nil {
			return nil, err
		}
		for _, j := range tidx {
			t := tg[j]
			if !t.has("Key") {
				return nil, api.Errorf("MissingParameter", "The request must contain the parameter TagSpecification.%d.Tag.%d.Key", i, j)
			}
			ts.Tags = append(ts.Tags, Tag{Key: t.str("Key"), Value: t.str("Value")})
		}
		out = append(out, ts)
	}
	return out, nil
}

// checkKnown refuses parameters the action does not take, as EC2 does
// (UnknownParameter): a misspelt parameter must not be silently ignored.
// known lists top-level names (the part before the first dot).
func (p params) checkKnown(known ...string) error {
	for k := range p {
		top, _, _ := strings.Cut(k, ".")
		switch top {
		case "Action", "Version":
			continue
		}
		if !slices.Contains(known, top) {
			return api.Errorf("UnknownParameter", "The parameter %s is not recognized", k)
		}
	}
	return nil
}
