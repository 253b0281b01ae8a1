package snapshot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/orchestrate-dev/orchestrate/internal/ec2sim"
)

func TestCredentialsMissing(t *testing.T) {
	isolateAWS(t)

	// An IMDS stand-in proves that nothing is asked of the metadata
	// service: AWS_EC2_METADATA_DISABLED must keep the chain off it.
	var imdsHits atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			imdsHits.Add(1)
			http.Error(w, "no", http.StatusNotFound)
		}))
	t.Cleanup(imds.Close)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)

	c, err := New(context.Background(), Config{Region: testRegion})
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	err = c.Credentials(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") {
		t.Errorf("Credentials() = %v, want an error about credentials", err)
	}
	if n := imdsHits.Load(); n != 0 {
		t.Errorf("Credentials() made %d IMDS requests, want 0", n)
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	isolateAWS(t)
	setKeys(t, testAKID, testSecret)
	c, err := New(context.Background(), Config{Region: testRegion})
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	if err := c.Credentials(context.Background()); err != nil {
		t.Errorf("Credentials() = %v, want nil", err)
	}
}

func TestCredentialsFromProfile(t *testing.T) {
	isolateAWS(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	body := "[ops]\naws_access_key_id = " + testAKID +
		"\naws_secret_access_key = " + testSecret + "\n"
	if err := os.WriteFile(creds, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)

	tests := []struct {
		profile string
		wantNew bool // New fails
	}{
		{profile: "ops"},
		{profile: "nope", wantNew: true},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			c, err := New(context.Background(), Config{Profile: tt.profile,
				Region: testRegion})
			if (err != nil) != tt.wantNew {
				t.Fatalf("New(Profile %q) error = %v, want error %v",
					tt.profile, err, tt.wantNew)
			}
			if err != nil {
				return
			}
			if err := c.Credentials(context.Background()); err != nil {
				t.Errorf("Credentials() = %v, want nil", err)
			}
		})
	}
}

func TestNewEndpointURL(t *testing.T) {
	isolateAWS(t)
	tests := []struct {
		url     string
		wantErr bool
	}{
		{url: ""},
		{url: "http://127.0.0.1:4566"},
		{url: "https://ec2.example.test/"},
		{url: "127.0.0.1:4566", wantErr: true},
		{url: "ftp://127.0.0.1", wantErr: true},
		{url: "http://", wantErr: true},
	}
	for _, tt := range tests {
		_, err := New(context.Background(), Config{EndpointURL: tt.url})
		if (err != nil) != tt.wantErr {
			t.Errorf("New(EndpointURL %q) = %v, want error %v", tt.url, err,
				tt.wantErr)
		}
	}
}

func TestDefaultRegion(t *testing.T) {
	tests := []struct {
		name, cfg, env, want string
	}{
		{name: "Flag", cfg: "eu-west-1", env: "us-east-2", want: "eu-west-1"},
		{name: "Env", env: "us-east-2", want: "us-east-2"},
		{name: "None"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWS(t)
			t.Setenv("AWS_REGION", tt.env)
			c, err := New(context.Background(), Config{Region: tt.cfg})
			if err != nil {
				t.Fatalf("New() error: %v", err)
			}
			if got := c.DefaultRegion(); got != tt.want {
				t.Errorf("DefaultRegion() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoRegion(t *testing.T) {
	isolateAWS(t)
	setKeys(t, testAKID, testSecret)
	c, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	_, err = c.Describe(context.Background(), "", []string{instDB})
	if !errors.Is(err, ErrNoRegion) {
		t.Errorf("Describe(region \"\") = %v, want ErrNoRegion", err)
	}
}

func TestUserAgent(t *testing.T) {
	srv, err := ec2sim.New(testFixture(), ec2sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ua atomic.Value
	ts := httptest.NewServer(recordUA(srv, &ua))
	t.Cleanup(ts.Close)
	c := newTestClient(t, ts.URL)

	if _, err := c.Describe(context.Background(), "",
		[]string{instDB}); err != nil {
		t.Fatalf("Describe() error: %v", err)
	}
	// The SDK writes the app id with "-" for "/".
	got, _ := ua.Load().(string)
	if want := "app/orchestrate-0.0.0-test"; !strings.Contains(got, want) {
		t.Errorf("User-Agent = %q, want it to contain %q", got, want)
	}
}
