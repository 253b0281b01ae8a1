package ec2sim

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// post sends a form body signed with the test key and returns the status
// and body of the answer.
func post(t *testing.T, url, body string, sign bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sign {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
		err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]),
			"ec2", region, time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWireFormat(t *testing.T) {
	s, _ := newServer(t, testFixture(), Options{})
	url := start(t, s)
	tests := []struct {
		name       string
		body       string
		sign       bool
		wantStatus int
		wantParts  []string
	}{
		{"Success", "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=" + instDB, true, 200,
			[]string{`<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`,
				`<reservationSet><item>`, `<instanceState><code>16</code><name>running</name></instanceState>`,
				`<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>` + volRoot}},
		{"Delete", "Action=DeleteSnapshot&Version=2016-11-15&SnapshotId=snap-12345678", true, 400,
			[]string{`<Response><Errors><Error><Code>InvalidSnapshot.NotFound</Code><Message>The snapshot &#39;snap-12345678&#39; does not exist.</Message></Error></Errors><RequestID>`}},
		{"Unsigned", "Action=DescribeInstances&Version=2016-11-15", false, 401,
			[]string{`<Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message>`}},
		{"MissingAction", "Version=2016-11-15", true, 400, []string{`<Code>MissingAction</Code>`}},
		{"UnknownAction", "Action=RunInstances&Version=2016-11-15", true, 400, []string{`<Code>InvalidAction</Code>`}},
		{"MissingVersion", "Action=DescribeInstances", true, 400, []string{`<Code>MissingParameter</Code>`}},
		{"OldVersion", "Action=DescribeInstances&Version=2014-10-01", true, 400, []string{`<Code>NoSuchVersion</Code>`}},
		{"BadDryRun", "Action=DescribeInstances&Version=2016-11-15&DryRun=maybe", true, 400, []string{`<Code>InvalidParameterValue</Code>`}},
		{"MissingVolume", "Action=CreateSnapshot&Version=2016-11-15", true, 400, []string{`<Code>MissingParameter</Code>`}},
		{"CreateSnapshotStatus", "Action=CreateSnapshot&Version=2016-11-15&VolumeId=" + volData, true, 200,
			[]string{`<CreateSnapshotResponse xmlns=`, `<status>pending</status>`}},
		{"CreateSnapshotsState", "Action=CreateSnapshots&Version=2016-11-15&InstanceSpecification.InstanceId=" + instWeb, true, 200,
			[]string{`<snapshotSet><item><snapshotId>snap-`, `<state>pending</state>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, url, tt.body, tt.sign)
			if status != tt.wantStatus {
				t.Errorf("POST %s = status %d, want %d; body %s", tt.body, status, tt.wantStatus, body)
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(body, part) {
					t.Errorf("POST %s body = %s, want it to contain %s", tt.body, body, part)
				}
			}
		})
	}
}

func TestParseAuth(t *testing.T) {
	tests := []struct {
		in     string
		wantOK bool
		want   authHeader
	}{
		{"AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=ab12",
			true, authHeader{AccessKeyID: "AK", Date: "20260101", Region: "us-east-1", Service: "ec2",
				SignedHeaders: []string{"host", "x-amz-date"}, Signature: "ab12"}},
		{"AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/ec2, SignedHeaders=host, Signature=ab", false, authHeader{AccessKeyID: "AK"}},
		{"Basic dXNlcjpwYXNz", false, authHeader{}},
		{"", false, authHeader{}},
	}
	for _, tt := range tests {
		got, ok := parseAuth(tt.in)
		if ok != tt.wantOK || got.AccessKeyID != tt.want.AccessKeyID ||
			(ok && (got.Region != tt.want.Region || got.Signature != tt.want.Signature ||
				strings.Join(got.SignedHeaders, ";") != strings.Join(tt.want.SignedHeaders, ";"))) {
			t.Errorf("parseAuth(%q) = %+v, %v, want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"db", "db", true},
		{"db", "db1", false},
		{"db*", "db1", true},
		{"*", "", true},
		{"d?1", "db1", true},
		{"d?1", "d1", false},
		{"*-prod-*", "web-prod-2", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
	}
	for _, tt := range tests {
		if got := match(tt.pat, tt.s); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id, prefix string
		want       bool
	}{
		{"i-0123456789abcdef0", "i-", true},
		{"i-0123abcd", "i-", true},
		{"i-0123ABCD", "i-", false},
		{"i-0123abc", "i-", false},
		{"vol-0123abcd", "i-", false},
		{"snap-0123456789abcdef01", "snap-", false},
		{"snap-0123456789abcdef0", "snap-", true},
	}
	for _, tt := range tests {
		if got := validID(tt.id, tt.prefix); got != tt.want {
			t.Errorf("validID(%q, %q) = %v, want %v", tt.id, tt.prefix, got, tt.want)
		}
	}
}
