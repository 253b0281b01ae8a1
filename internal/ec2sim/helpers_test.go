package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

const (
	testAKID   = "AKIDEXAMPLEGOOD01"
	testSecret = "secret/for+tests"
	otherAKID  = "AKIDEXAMPLEOTHER2"
	region     = "us-east-1"

	instDB   = "i-0123456789abcdef0"
	instWeb  = "i-0aaaaaaaaaaaaaaa1"
	instOld  = "i-0bbbbbbb"
	volRoot  = "vol-0000000000000000a"
	volData  = "vol-0000000000000000b"
	volLogs  = "vol-0000000000000000c"
	volWeb   = "vol-0000000000000000d"
	volSpare = "vol-0000000e"
)

// testFixture is two instances with volumes, one spare volume and one
// stopped instance, plus a pre-existing snapshot of another account.
func testFixture() *Fixture {
	return &Fixture{
		Credentials: []Credential{
			{AccessKeyID: testAKID, SecretAccessKey: testSecret},
			{AccessKeyID: otherAKID, SecretAccessKey: "other"},
		},
		Instances: []Instance{
			{
				ID: instDB, RootDeviceName: "/dev/xvda", PrivateIP: "10.0.0.5",
				PrivateDNS: "ip-10-0-0-5.ec2.internal",
				Tags:       map[string]string{"Name": "db1", "Role": "db"},
				BlockDeviceMappings: []Mapping{
					{DeviceName: "/dev/xvda", VolumeID: volRoot, DeleteOnTermination: true},
					{DeviceName: "/dev/sdf", VolumeID: volData},
					{DeviceName: "/dev/sdg", VolumeID: volLogs},
				},
			},
			{
				ID: instWeb, RootDeviceName: "/dev/sda1",
				AvailabilityZone: "us-east-1b",
				Tags:             map[string]string{"Name": "web1", "Role": "web"},
				BlockDeviceMappings: []Mapping{
					{DeviceName: "/dev/sda1", VolumeID: volWeb},
				},
			},
			{ID: instOld, State: "stopped", Tags: map[string]string{"Role": "db"}},
		},
		Volumes: []Volume{
			{ID: volRoot, SizeGiB: 8},
			{ID: volData, SizeGiB: 100, Encrypted: true,
				Tags: map[string]string{"Name": "db-data", "Backup": "yes"}},
			{ID: volLogs, SizeGiB: 20, VolumeType: "st1"},
			{ID: volWeb, SizeGiB: 16},
			{ID: volSpare, SizeGiB: 1},
		},
		Snapshots: []Snapshot{
			{ID: "snap-0ffffffffffffffff", VolumeID: "vol-ffffffff",
				OwnerID: "999999999999", Description: "public image",
				VolumeSizeGiB: 8},
		},
	}
}

// start serves s on loopback for the test and returns its URL.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL
}

// newServer starts a server for f and returns it with a client signed by
// the test key that makes one attempt per call.
func newServer(t *testing.T, f *Fixture, opts Options) (*Server, *ec2.Client) {
	t.Helper()
	s, err := New(f, opts)
	if err != nil {
		t.Fatalf("New() = %v, want no error", err)
	}
	url := start(t, s)
	return s, client(url, testAKID, testSecret, "", 1)
}

// client returns a real SDK client for url. attempts > 1 retries with no
// backoff delay.
func client(url, akid, secret, token string, attempts int) *ec2.Client {
	cfg := aws.Config{
		Region: region,
		Credentials: credentials.NewStaticCredentialsProvider(
			akid, secret, token),
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.Backoff = retry.BackoffDelayerFunc(
				func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
}

// apiCode returns the EC2 error code of err, "" for nil, or fails.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not a smithy.APIError", err)
	}
	return ae.ErrorCode()
}

// messageOf returns the EC2 error message of err, or "".
func messageOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// httpStatusOf returns the HTTP status of an SDK error, or 0.
func httpStatusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

// codes lists the codes of calls, for failure messages.
func codes(calls []Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, fmt.Sprintf("%s:%q", c.Action, c.Code))
	}
	return out
}

var _ http.Handler = (*Server)(nil)
