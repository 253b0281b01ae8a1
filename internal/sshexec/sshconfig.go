package sshexec

// This file reads ssh_config files. Parsing is github.com/kevinburke/ssh_config;
// Include is resolved here, so that relative paths, "~" and parse errors
// in included files follow this package's rules (home is $HOME, errors
// name the file and line).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// maxIncludeDepth is how deeply Include may nest, as in OpenSSH.
const maxIncludeDepth = 16

// includeKey stands in for an Include line in the text handed to the
// parser; its value is an index into cfgFile.includes.
const includeKey = "XOrchestrateInclude"

// SSHConfig is a parsed ssh_config file with its Include files. It is
// read-only after LoadConfig and safe for concurrent use. A nil
// *SSHConfig is an empty configuration.
type SSHConfig struct {
	root *cfgFile
	home string // for ~ and relative Include paths
}

// cfgFile is one parsed file.
type cfgFile struct {
	path     string
	cfg      *ssh_config.Config
	includes [][]*cfgFile // by includeKey value, in glob order
}

// LoadConfig reads the ssh_config file at path; "" means ~/.ssh/config,
// where ~ is $HOME (os.UserHomeDir). A missing file is an empty
// configuration, not an error. Include is followed up to 16 levels, with
// relative paths taken from ~/.ssh as OpenSSH does for user files; a
// pattern matching no file is ignored. Only "Match host" and "Match all"
// are understood: any other Match criterion (exec, user, ...) is a parse
// error, as are invalid Host patterns. Parse errors name the file and the
// line, e.g. "sshexec: parse ssh config /home/op/.ssh/config:3: ...".
// /etc/ssh/ssh_config is not read.
func LoadConfig(path string) (*SSHConfig, error) {
	home, err := os.UserHomeDir()
	if err != nil && (path == "" || !filepath.IsAbs(path)) {
		return nil, fmt.Errorf("sshexec: read ssh config: %w", err)
	}
	if path == "" {
		path = filepath.Join(home, ".ssh", "config")
	}
	c := &SSHConfig{home: home}
	root, err := c.parseFile(path, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return &SSHConfig{home: home}, nil
	}
	if err != nil {
		return nil, err
	}
	c.root = root
	return c, nil
}

// parseFile reads and parses one file and, recursively, its includes.
func (c *SSHConfig) parseFile(path string, depth int) (*cfgFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("sshexec: read ssh config %s: %w", path, err)
	}

	f := &cfgFile{path: path}
	text, err := c.rewriteIncludes(f, string(data), depth)
	if err != nil {
		return nil, err
	}
	cfg, err := ssh_config.DecodeBytes([]byte(text))
	if err != nil {
		return nil, parseError(path, err)
	}
	f.cfg = cfg
	return f, nil
}

// rewriteIncludes parses the files each Include line names and replaces
// the line by an includeKey entry, keeping line numbers.
func (c *SSHConfig) rewriteIncludes(f *cfgFile, text string, depth int) (string, error) {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		args, ok := includeArgs(line)
		if !ok {
			continue
		}
		if depth >= maxIncludeDepth {
			return "", fmt.Errorf("sshexec: parse ssh config %s:%d: Include nested more than %d deep", f.path, i+1, maxIncludeDepth)
		}
		if len(args) == 0 {
			return "", fmt.Errorf("sshexec: parse ssh config %s:%d: Include names no file", f.path, i+1)
		}

		var files []*cfgFile
		for _, pat := range args {
			matches, err := filepath.Glob(c.includePath(pat))
			if err != nil {
				return "", fmt.Errorf("sshexec: parse ssh config %s:%d: Include %q: %w", f.path, i+1, pat, err)
			}
			for _, m := range matches {
				inc, err := c.parseFile(m, depth+1)
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed since the glob
				}
				if err != nil {
					return "", err
				}
				files = append(files, inc)
			}
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		lines[i] = indent + includeKey + " " + strconv.Itoa(len(f.includes))
		f.includes = append(f.includes, files)
	}
	return strings.Join(lines, "\n"), nil
}

// includeArgs returns the arguments of an Include line, ok false when
// line is not one.
func includeArgs(line string) ([]string, bool) {
	s := strings.TrimLeft(strings.TrimRight(line, "\r"), " \t")
	end := strings.IndexAny(s, " \t=")
	if end < 0 || !strings.EqualFold(s[:end], "include") {
		return nil, false
	}
	rest := strings.TrimLeft(s[end:], " \t")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, "="), " \t")
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	var args []string
	for _, a := range strings.Fields(rest) {
		args = append(args, strings.Trim(a, `"`))
	}
	return args, true
}

// includePath resolves an Include argument: ~/ is the home directory,
// a relative path is taken from ~/.ssh.
func (c *SSHConfig) includePath(p string) string {
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		return filepath.Join(c.home, p[1:])
	case filepath.IsAbs(p):
		return p
	}
	return filepath.Join(c.home, ".ssh", p)
}

// parserPos matches the position the parser puts first in its errors.
var parserPos = regexp.MustCompile(`^\((\d+), \d+\): `)

// parseError turns a parser error into one naming the file and line.
func parseError(path string, err error) error {
	msg := strings.TrimSpace(err.Error())
	if m := parserPos.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("sshexec: parse ssh config %s:%s: %s", path, m[1], strings.TrimPrefix(msg[len(m[0]):], "ssh_config: "))
	}
	return fmt.Errorf("sshexec: parse ssh config %s: %s", path, msg)
}

// get returns the first value of key for alias, ok false when no matching
// block sets it. Keys are case-insensitive; first match wins.
func (c *SSHConfig) get(alias, key string) (string, bool) {
	if c == nil || c.root == nil {
		return "", false
	}
	var v string
	found := c.root.walk(alias, key, func(s string) bool { v = s; return true })
	return v, found
}

// getAll returns every value of key for alias, in file order.
func (c *SSHConfig) getAll(alias, key string) []string {
	if c == nil || c.root == nil {
		return nil
	}
	var vs []string
	c.root.walk(alias, key, func(s string) bool { vs = append(vs, s); return false })
	return vs
}

// walk calls fn with each value of key in the blocks matching alias,
// descending into includes in place, until fn returns true. It reports
// whether fn did.
func (f *cfgFile) walk(alias, key string, fn func(string) bool) bool {
	for _, h := range f.cfg.Hosts {
		if !h.Matches(alias) {
			continue
		}
		for _, n := range h.Nodes {
			kv, ok := n.(*ssh_config.KV)
			if !ok {
				continue
			}
			if kv.Key == includeKey {
				i, _ := strconv.Atoi(kv.Value)
				for _, inc := range f.includes[i] {
					if inc.walk(alias, key, fn) {
						return true
					}
				}
				continue
			}
			if strings.EqualFold(kv.Key, key) && fn(kv.Value) {
				return true
			}
		}
	}
	return false
}
