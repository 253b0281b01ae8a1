package hosts

import (
	"fmt"
	"strings"
)

// Limits on what Parse accepts.
const (
	// MaxFileSize is the largest hosts file, in bytes.
	MaxFileSize = 1 << 20
	// MaxLineLength is the longest line, in bytes, without its newline.
	MaxLineLength = 4096
	// MaxErrors is how many errors an ErrorList holds before it stops
	// listing them and ends with a count of the rest.
	MaxErrors = 20
)

// Error is one problem found in a hosts file. Line is 1-based, or 0 when
// the problem concerns the whole file. Col is the 1-based byte column of
// the offending field (or byte, for encoding problems), or 0 when the
// problem concerns the whole line. Msg says what is wrong and what was
// expected. Err, when not nil, is the underlying cause, such as the
// *fs.PathError of a file that could not be read.
type Error struct {
	Path      string
	Line, Col int
	Msg       string
	Err       error
}

// Error returns "path:line:col: msg", leaving out the column when Col is 0
// and the line and column when Line is 0.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in a hosts file, in the order of the
// file, at most MaxErrors of them plus a final entry counting the rest.
// Parse, Load and File.Require return an ErrorList as their error, never
// an empty one.
type ErrorList []*Error

// Error returns the errors, one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, so that errors.Is and errors.As look into
// each of them.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// collector gathers the errors of one file, up to MaxErrors.
type collector struct {
	path    string
	list    ErrorList
	dropped int
}

// add records a problem at line and col.
func (c *collector) add(line, col int, format string, args ...any) {
	c.addError(&Error{
		Path: c.path,
		Line: line,
		Col:  col,
		Msg:  fmt.Sprintf(format, args...),
	})
}

// addError records e, or only counts it once MaxErrors are recorded.
func (c *collector) addError(e *Error) {
	if len(c.list) >= MaxErrors {
		c.dropped++
		return
	}
	c.list = append(c.list, e)
}

// failed reports whether any problem was recorded.
func (c *collector) failed() bool { return len(c.list) > 0 }

// err returns the recorded problems as an ErrorList, or nil if none.
func (c *collector) err() error {
	if len(c.list) == 0 {
		return nil
	}
	list := c.list
	if c.dropped > 0 {
		list = append(list, &Error{
			Path: c.path,
			Msg:  fmt.Sprintf("too many errors (%d more not shown)", c.dropped),
		})
	}
	return list
}
