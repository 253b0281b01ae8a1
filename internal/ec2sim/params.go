package ec2sim

// This file decodes the flattened Query parameters (Name.N, Filter.N.Name,
// TagSpecification.N.Tag.M.Key) and validates resource IDs.

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// params is the decoded form of one request.
type params struct{ url.Values }

// str returns the single value of name, or "".
func (p params) str(name string) string { return p.Get(name) }

// has reports whether name was sent at all.
func (p params) has(name string) bool { _, ok := p.Values[name]; return ok }

// required returns the value of name or a MissingParameter error.
func (p params) required(name string) (string, *apiError) {
	v := p.Get(name)
	if v == "" {
		return "", errf("MissingParameter",
			"The request must contain the parameter %s", name)
	}
	return v, nil
}

// boolean decodes name as true/false; absent is false.
func (p params) boolean(name string) (bool, *apiError) {
	v := p.Get(name)
	switch strings.ToLower(v) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errf("InvalidParameterValue",
		"Value (%s) for parameter %s is invalid. Expected: 'true' or 'false'.",
		v, name)
}

// list returns prefix.1, prefix.2, ... up to the first gap.
func (p params) list(prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		k := prefix + "." + strconv.Itoa(i)
		if !p.has(k) {
			return out
		}
		out = append(out, p.Get(k))
	}
}

// maxResults decodes MaxResults; ok is false when it was not sent.
func (p params) maxResults(lo, hi int) (n int, ok bool, e *apiError) {
	v := p.Get("MaxResults")
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, false, errf("InvalidParameterValue",
			"Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", v, lo, hi)
	}
	return n, true, nil
}

// filter is one Filter.N: a name and the values any of which may match.
type filter struct {
	Name   string
	Values []string
}

// filters decodes Filter.N.Name / Filter.N.Value.M, checking each name
// against known (a name "tag:" allows any tag:KEY).
func (p params) filters(known []string) ([]filter, *apiError) {
	var out []filter
	for i := 1; ; i++ {
		pre := "Filter." + strconv.Itoa(i)
		if !p.has(pre + ".Name") {
			return out, nil
		}
		f := filter{Name: p.Get(pre + ".Name"), Values: p.list(pre + ".Value")}
		isTag := strings.HasPrefix(f.Name, "tag:") && len(f.Name) > 4
		if !isTag && !slices.Contains(known, f.Name) {
			return nil, errf("InvalidParameterValue",
				"The filter '%s' is invalid", f.Name)
		}
		out = append(out, f)
	}
}

// tagList decodes prefix.N.Key / prefix.N.Value into an ordered list,
// rejecting empty, reserved or too long keys and too long values.
func (p params) tagList(prefix string) ([]xmlTag, *apiError) {
	var out []xmlTag
	for i := 1; ; i++ {
		pre := prefix + "." + strconv.Itoa(i)
		if !p.has(pre+".Key") && !p.has(pre+".Value") {
			return out, nil
		}
		t := xmlTag{Key: p.Get(pre + ".Key"), Value: p.Get(pre + ".Value")}
		if e := checkTag(t); e != nil {
			return nil, e
		}
		out = append(out, t)
	}
}

func checkTag(t xmlTag) *apiError {
	switch {
	case t.Key == "":
		return errf("InvalidParameterValue",
			"Tag key must not be empty")
	case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
		return errf("InvalidParameterValue",
			"Value ( %s ) for parameter key is invalid. Tag keys starting with 'aws:' are reserved for internal use", t.Key)
	case len(t.Key) > 128:
		return errf("InvalidParameterValue",
			"Tag key exceeds the maximum length of 128 characters")
	case len(t.Value) > 256:
		return errf("InvalidParameterValue",
			"Tag value exceeds the maximum length of 256 characters")
	}
	return nil
}

// maxTags is the number of tags one resource may carry.
const maxTags = 50

// snapshotTagSpecs decodes TagSpecification.N for a create call: only the
// resource type "snapshot" is allowed, and its tags are merged in order.
func (p params) snapshotTagSpecs() ([]xmlTag, *apiError) {
	var out []xmlTag
	for i := 1; ; i++ {
		pre := "TagSpecification." + strconv.Itoa(i)
		if !p.has(pre+".ResourceType") && !p.has(pre+".Tag.1.Key") {
			return out, nil
		}
		rt := p.Get(pre + ".ResourceType")
		if rt != "snapshot" {
			return nil, errf("InvalidParameterValue",
				"'%s' is not a valid taggable resource type for this operation.", rt)
		}
		tags, e := p.tagList(pre + ".Tag")
		if e != nil {
			return nil, e
		}
		out = append(out, tags...)
	}
}

// validID reports whether id is prefix followed by 8 or 17 lower-case
// hexadecimal digits, the two ID formats EC2 issues.
func validID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || (len(rest) != 8 && len(rest) != 17) {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// newID returns prefix and 17 random hexadecimal digits.
func newID(prefix string) string {
	b := make([]byte, 9)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)[:17]
}

// match reports whether s matches the EC2 filter pattern pat, where *
// matches any run of characters and ? any one character.
func match(pat, s string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if match(pat[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
		default:
			if len(s) == 0 || s[0] != pat[0] {
				return false
			}
		}
		pat, s = pat[1:], s[1:]
	}
	return len(s) == 0
}

// matchAny reports whether any of vals matches any of pats.
func matchAny(pats []string, vals ...string) bool {
	for _, p := range pats {
		for _, v := range vals {
			if match(p, v) {
				return true
			}
		}
	}
	return false
}

// matchTags applies a tag:KEY or tag-key filter to tags; ok is false when
// f is neither.
func matchTags(f filter, tags map[string]string) (matched, ok bool) {
	if f.Name == "tag-key" {
		return matchAny(f.Values, sortedKeys(tags)...), true
	}
	key, isTag := strings.CutPrefix(f.Name, "tag:")
	if !isTag {
		return false, false
	}
	v, has := tags[key]
	return has && matchAny(f.Values, v), true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
