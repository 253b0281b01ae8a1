package hosts

import (
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse reads a hosts file from r; path names it in messages. It checks
// the whole file and returns either a File with at least one host and a
// nil error, or a nil File and an ErrorList holding every problem found
// (see MaxErrors), each with its line and column. A file larger than
// MaxFileSize, lines longer than MaxLineLength, invalid UTF-8, control
// characters, a file without hosts and a failing r are errors too.
//
// Parse does not demand instance=, mounts= or volumes=; File.Require
// does.
func Parse(path string, r io.Reader) (*File, error) {
	return ParseRequiring(path, r, Requirements{})
}

// ParseRequiring is Parse that also demands the options in req on every
// host line, reporting missing ones together with every other error.
func ParseRequiring(path string, r io.Reader, req Requirements) (*File, error) {
	c := &collector{path: path}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		c.addError(ioError(path, "read hosts file", err))
		return nil, c.err()
	}
	if len(data) > MaxFileSize {
		c.add(0, 0, "file is larger than 1 MiB (want at most %d bytes)",
			MaxFileSize)
		return nil, c.err()
	}

	p := &parser{
		c:         c,
		req:       req,
		dests:     make(map[string]int),
		instances: make(map[string]int),
	}
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		p.parseLine(i+1, strings.TrimSuffix(line, "\r"))
	}

	if p.hostLines == 0 && !c.failed() {
		c.add(0, 0, "no hosts (want one destination per line)")
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return &File{Path: path, Hosts: p.hosts}, nil
}

// parser holds what one Parse has seen so far.
type parser struct {
	c         *collector
	hosts     []Host
	hostLines int            // lines with a destination, valid or not
	dests     map[string]int // destinationKey → line
	instances map[string]int // instance ID → line
	req       Requirements   // options every host line must have
}

// field is one whitespace-separated word of a line.
type field struct {
	text string
	col  int // 1-based byte column
}

// lineState is what parseLine learns about one line.
type lineState struct {
	host   Host
	ok     bool           // no problem found on the line
	optCol map[string]int // option name → column where it was given

	optUser     string // from user=, "" if not given
	optPort     int    // from port=, 0 if not given
	userPortBad bool   // a user= or port= field was invalid
}

// parseLine parses one line, without its newline, into p.hosts or errors.
func (p *parser) parseLine(n int, line string) {
	if len(line) > MaxLineLength {
		p.c.add(n, 0, "line is %d bytes long (want at most %d)",
			len(line), MaxLineLength)
		return
	}
	if !utf8.ValidString(line) {
		p.c.add(n, invalidUTF8At(line)+1, "invalid UTF-8 (want UTF-8 text)")
		return
	}
	fields := splitFields(line)
	if len(fields) == 0 {
		return
	}
	p.hostLines++

	st := &lineState{
		host:   Host{Line: n, Destination: fields[0].text},
		ok:     true,
		optCol: make(map[string]int),
	}
	destOK := p.destination(st, fields[0])
	for _, f := range fields[1:] {
		bad := !p.option(st, f)
		if bad && (strings.HasPrefix(f.text, "user=") ||
			strings.HasPrefix(f.text, "port=")) {
			st.userPortBad = true
		}
	}
	if destOK && p.userPort(st, fields[0]) {
		p.checkDuplicateDest(st, fields[0])
	}
	p.checkDuplicateInstance(st)
	p.checkRequired(st)
	if st.ok {
		p.hosts = append(p.hosts, st.host)
	}
}

// checkRequired reports the options the caller demands that the line lacks,
// in the same pass as every other error, pointing at the destination.
func (p *parser) checkRequired(st *lineState) {
	for _, e := range missing(st.host, p.req) {
		p.fail(st, 1, "%s", e)
	}
}

// fail records a problem on the current line.
func (p *parser) fail(st *lineState, col int, format string, args ...any) {
	st.ok = false
	p.c.add(st.host.Line, col, format, args...)
}

// checkControl reports a control character in f, if any.
func (p *parser) checkControl(st *lineState, f field) bool {
	for i, r := range f.text {
		if unicode.IsControl(r) {
			p.fail(st, f.col+i, "control character %U (not allowed)", r)
			return false
		}
	}
	return true
}

// destination parses the destination field into st.host.
func (p *parser) destination(st *lineState, f field) bool {
	if !p.checkControl(st, f) {
		return false
	}
	user, addr, port, err := splitDestination(f.text)
	if err != nil {
		p.fail(st, f.col, "invalid destination %q: %v", f.text, err)
		return false
	}
	st.host.User, st.host.Addr, st.host.Port = user, addr, port
	return true
}

// option parses one key=value field into st.host, and reports whether
// the field was valid.
func (p *parser) option(st *lineState, f field) bool {
	if !p.checkControl(st, f) {
		return false
	}
	key, val, ok := strings.Cut(f.text, "=")
	if !ok {
		p.fail(st, f.col, "unexpected field %q (want key=value options "+
			"after the destination)", f.text)
		return false
	}
	want, known := optionWant[key]
	if !known {
		p.fail(st, f.col, "unknown option %q (want %s)", key, optionNames)
		return false
	}
	if first, seen := st.optCol[key]; seen {
		p.fail(st, f.col, "repeated option %s= (first at column %d)",
			key, first)
		return false
	}
	st.optCol[key] = f.col
	if val == "" {
		p.fail(st, f.col, "empty value for %s= (want %s)", key, want)
		return false
	}

	if err := st.set(key, val); err != nil {
		p.fail(st, f.col, "%v", err)
		return false
	}
	return true
}

// set sets the option key to val on the line, or says why it cannot.
// user= and port= wait in optUser and optPort for userPort.
func (st *lineState) set(key, val string) error {
	var err error
	h := &st.host
	switch key {
	case "instance":
		h.InstanceID, err = parseInstanceID(val)
	case "mounts":
		h.Mounts, err = parseMounts(val)
	case "volumes":
		h.Volumes, err = parseVolumes(val)
	case "region":
		h.Region, err = parseRegion(val)
	case "user":
		st.optUser, err = parseUserOption(val)
	case "port":
		st.optPort, err = parsePort(val)
	}
	return err
}

// userPort merges user= and port= into the destination's user and port,
// and reports a conflict with the destination f. It returns false when
// the user or port of the host is unknown.
func (p *parser) userPort(st *lineState, f field) bool {
	h := &st.host
	if st.optUser != "" {
		if h.User != "" && h.User != st.optUser {
			p.fail(st, st.optCol["user"], "user=%s conflicts with "+
				"user %q in destination %q", st.optUser, h.User, f.text)
			return false
		}
		h.User = st.optUser
	}
	if st.optPort != 0 {
		if h.Port != 0 && h.Port != st.optPort {
			p.fail(st, st.optCol["port"], "port=%d conflicts with "+
				"port %d in destination %q", st.optPort, h.Port, f.text)
			return false
		}
		h.Port = st.optPort
	}
	return !st.userPortBad
}

// checkDuplicateDest reports a destination that an earlier line names.
func (p *parser) checkDuplicateDest(st *lineState, f field) {
	h := &st.host
	key := destinationKey(h.User, h.Addr, h.Port)
	if first, dup := p.dests[key]; dup {
		p.fail(st, f.col, "duplicate destination %q (first on line %d)",
			key, first)
		return
	}
	p.dests[key] = h.Line
}

// checkDuplicateInstance reports an instance ID an earlier line names.
func (p *parser) checkDuplicateInstance(st *lineState) {
	id := st.host.InstanceID
	if id == "" {
		return
	}
	if first, dup := p.instances[id]; dup {
		p.fail(st, st.optCol["instance"], "duplicate instance ID %q "+
			"(first on line %d)", id, first)
		return
	}
	p.instances[id] = st.host.Line
}

// splitFields splits line at spaces and tabs, up to a comment.
func splitFields(line string) []field {
	var fields []field
	i := 0
	for i < len(line) {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		if line[i] == '#' {
			break
		}
		end := strings.IndexAny(line[i:], " \t")
		if end < 0 {
			end = len(line) - i
		}
		fields = append(fields, field{text: line[i : i+end], col: i + 1})
		i += end
	}
	return fields
}

// invalidUTF8At returns the byte offset of the first invalid UTF-8 in s.
func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}
