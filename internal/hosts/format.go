package hosts

import (
	"fmt"
	"strconv"
	"strings"
)

// mountEscapes maps each octal escape a mount point may hold to the byte
// it stands for. Those for space, tab and backslash are the ones
// /proc/mounts and fstab write; the comma one lets a mount point hold the
// list separator.
var mountEscapes = map[string]byte{
	`\040`: ' ',
	`\011`: '\t',
	`\054`: ',',
	`\134`: '\\',
}

// unescapeMount resolves the octal escapes in one raw mount point.
func unescapeMount(raw string) (string, error) {
	if !strings.Contains(raw, `\`) {
		return raw, nil
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			b.WriteByte(raw[i])
			continue
		}
		esc := raw[i:min(i+4, len(raw))]
		c, ok := mountEscapes[esc]
		if !ok {
			return "", fmt.Errorf("invalid escape %q in mount point %q "+
				`(want \040 for a space, \054 for a comma `+
				`or \134 for a backslash)`, esc, raw)
		}
		b.WriteByte(c)
		i += 3
	}
	return b.String(), nil
}

// escapeMount writes a mount point so that it fits in one field and
// unescapeMount gives it back.
func escapeMount(m string) string {
	var b strings.Builder
	for i := 0; i < len(m); i++ {
		switch c := m[i]; c {
		case ' ':
			b.WriteString(`\040`)
		case '\t':
			b.WriteString(`\011`)
		case ',':
			b.WriteString(`\054`)
		case '\\':
			b.WriteString(`\134`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Format writes h as one hosts file line, without a newline: the
// destination as written, then instance=, mounts= (escaped), volumes=,
// region=, and user= and port= where they differ from the destination's,
// leaving out empty ones. For any Host that Parse returned, parsing the
// line gives the same Host back (but for Line). Format does not validate
// h: an invalid Host gives a line that Parse rejects.
func Format(h Host) string {
	var b strings.Builder
	b.WriteString(h.Destination)
	if h.InstanceID != "" {
		b.WriteString(" instance=" + h.InstanceID)
	}
	if len(h.Mounts) > 0 {
		esc := make([]string, len(h.Mounts))
		for i, m := range h.Mounts {
			esc[i] = escapeMount(m)
		}
		b.WriteString(" mounts=" + strings.Join(esc, ","))
	}
	if len(h.Volumes) > 0 {
		b.WriteString(" volumes=" + strings.Join(h.Volumes, ","))
	}
	if h.Region != "" {
		b.WriteString(" region=" + h.Region)
	}

	// user= and port= only add what the destination does not say.
	user, _, port, _ := splitDestination(h.Destination)
	if h.User != user && h.User != "" {
		b.WriteString(" user=" + h.User)
	}
	if h.Port != port && h.Port != 0 {
		b.WriteString(" port=" + strconv.Itoa(h.Port))
	}
	return b.String()
}
