package freeze

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// shellEcho has /bin/sh print its first argument back, exactly.
func shellEcho(t *testing.T, quoted string) string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", "printf '%s' "+quoted).Output()
	if err != nil {
		t.Fatalf("sh -c printf %s: %v", quoted, err)
	}
	return string(out)
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "/data", "a b", "it's", `"$(touch /tmp/x)"`,
		"`id`", "-rf", "--", "a\nb", "\\", "'", "''", "$HOME", "*", "~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			t.Skip("NUL cannot reach a shell")
		}
		if got := shellEcho(t, Quote(s)); got != s {
			t.Errorf("sh reads Quote(%q) as %q", s, got)
		}
	})
}

func TestCommandQuotesEveryArgument(t *testing.T) {
	opts := Options{RunID: "r'1", Mounts: []string{"/data one", "/x$(id)"}, nonce: "n0",
		Timeout: 1500 * time.Millisecond}
	tests := []struct {
		sudo SudoMode
		user string
		want string // prefix
	}{
		{SudoAuto, "root", "exec '/bin/sh' '-c' "},
		{SudoAuto, "deploy", "exec 'sudo' '-n' '--' '/bin/sh' '-c' "},
		{SudoAlways, "root", "exec 'sudo' '-n' '--' '/bin/sh' '-c' "},
		{SudoNever, "deploy", "exec '/bin/sh' '-c' "},
	}
	for _, tt := range tests {
		opts.Sudo = tt.sudo
		got := Command(opts, tt.user)
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("Command(%v, %s) starts %.40q, want %q", tt.sudo, tt.user, got, tt.want)
		}
		tail := " 'orchestrate-agent' 'n0' 'r'\\''1' '2' '0' '/data one' '/x$(id)'"
		if !strings.HasSuffix(got, tail) {
			t.Errorf("Command(%v, %s) ends %q, want %q", tt.sudo, tt.user,
				got[len(got)-len(tail):], tail)
		}
	}
}
