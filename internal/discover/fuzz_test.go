package discover

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds Parse arbitrary output, seeded with the fixtures and
// cuts of them: it must never panic, and whatever it accepts must go
// through Resolve without panicking either.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(frame(okFindmnt, "0", `{"blockdevices": [{"kname": "a", "children": [{"kname": "a"}]}]}`, "0")))
	f.Add([]byte("@orchestrate-discover 1\n@end\n"))

	maps := []Mapping{{"/dev/sdf", "vol-0123456789abcdef0", false}, {"/dev/xvda", "vol-0a1b2c3d4e5f60718", true}}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			if h != nil {
				t.Errorf("Parse(%q) = %v and a host, want no host with an error", b, err)
			}
			return
		}
		for _, opts := range []Options{{}, {Chosen: []string{"/", "/data"}, AllowRoot: true, Closure: ClosureFail, Volumes: []string{"vol-01234567"}}} {
			p, err := Resolve(h, maps, opts)
			if p == nil {
				t.Errorf("Resolve(Parse(%q)) = nil plan, %v; want a plan", b, err)
			}
		}
	})
}
