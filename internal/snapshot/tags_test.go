package snapshot

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTag(t *testing.T) {
	tests := []struct {
		in        string
		wantKey   string
		wantValue string
		wantErr   bool
	}{
		{in: "team=db", wantKey: "team", wantValue: "db"},
		{in: "empty=", wantKey: "empty"},
		{in: "url=a=b", wantKey: "url", wantValue: "a=b"},
		{in: "Name=db 1 (primary)", wantKey: "Name", wantValue: "db 1 (primary)"},
		{in: "käse=straße", wantKey: "käse", wantValue: "straße"},
		{in: strings.Repeat("k", 128) + "=v", wantKey: strings.Repeat("k", 128),
			wantValue: "v"},
		{in: "k=" + strings.Repeat("v", 256), wantKey: "k",
			wantValue: strings.Repeat("v", 256)},
		{in: strings.Repeat("ü", 128) + "=v", wantKey: strings.Repeat("ü", 128),
			wantValue: "v"},
		{in: strings.Repeat("k", 129) + "=v", wantErr: true},
		{in: "k=" + strings.Repeat("v", 257), wantErr: true},
		{in: "novalue", wantErr: true},
		{in: "", wantErr: true},
		{in: "=v", wantErr: true},
		{in: "aws:cloudformation=x", wantErr: true},
		{in: "AWS:x=y", wantErr: true},
		{in: "orchestrate:run-id=x", wantErr: true},
		{in: "k=\xff", wantErr: true},
	}
	for _, tt := range tests {
		key, value, err := ParseTag(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrBadTag) {
				t.Errorf("ParseTag(%q) = %q, %q, %v; want ErrBadTag", tt.in,
					key, value, err)
			}
			continue
		}
		if err != nil || key != tt.wantKey || value != tt.wantValue {
			t.Errorf("ParseTag(%q) = %q, %q, %v; want %q, %q, nil", tt.in,
				key, value, err, tt.wantKey, tt.wantValue)
		}
	}
}
