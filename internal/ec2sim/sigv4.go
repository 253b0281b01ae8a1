package ec2sim

// This file checks AWS Signature Version 4 on each request by rebuilding
// the canonical request from the headers the client says it signed.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFmt   = "20060102T150405Z"
	// maxSkew is how far the request's X-Amz-Date may be from the clock.
	maxSkew = 15 * time.Minute
)

// authHeader is the decoded Authorization header.
type authHeader struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
}

// parseAuth decodes "AWS4-HMAC-SHA256 Credential=AKID/date/region/ec2/
// aws4_request, SignedHeaders=a;b, Signature=hex". ok is false when the
// header is missing or not of that form; AccessKeyID may still be set.
func parseAuth(h string) (a authHeader, ok bool) {
	rest, found := strings.CutPrefix(h, sigAlgorithm+" ")
	if !found {
		return a, false
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			a.AccessKeyID = scope[0]
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return a, false
			}
			a.Date, a.Region, a.Service = scope[1], scope[2], scope[3]
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		}
	}
	ok = a.AccessKeyID != "" && len(a.SignedHeaders) > 0 &&
		a.Signature != ""
	return a, ok
}

// verify checks the signature of r, whose body is body, against the
// secret of the key it names. It returns the access key ID the request
// claims (for the call log) and an AuthFailure or RequestExpired error.
func (s *Server) verify(r *http.Request, body []byte) (string, *apiError) {
	a, ok := parseAuth(r.Header.Get("Authorization"))
	if !ok {
		return a.AccessKeyID, errf("AuthFailure", msgAuthFailure)
	}
	secret, known := s.secrets[a.AccessKeyID]
	if !known {
		return a.AccessKeyID, errf("AuthFailure", msgAuthFailure)
	}
	if a.Service != "ec2" || a.Region != s.fx.Region {
		return a.AccessKeyID, errf("AuthFailure",
			"Credential should be scoped to a valid region and service ec2, not '%s/%s'.", a.Region, a.Service)
	}
	if !signedHeadersOK(a.SignedHeaders) {
		return a.AccessKeyID, errf("AuthFailure", msgAuthFailure)
	}

	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFmt, amzDate)
	if err != nil || !strings.HasPrefix(amzDate, a.Date) {
		return a.AccessKeyID, errf("AuthFailure", msgAuthFailure)
	}
	if d := time.Since(t); d > maxSkew || d < -maxSkew {
		return a.AccessKeyID, errf("RequestExpired",
			"Request has expired. Timestamp date is %s", amzDate)
	}

	canon := canonicalRequest(r, a.SignedHeaders, body)
	scope := strings.Join([]string{a.Date, a.Region, a.Service,
		"aws4_request"}, "/")
	toSign := strings.Join([]string{sigAlgorithm, amzDate, scope,
		hexSHA256([]byte(canon))}, "\n")
	key := signingKey(secret, a.Date, a.Region, a.Service)
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return a.AccessKeyID, errf("AuthFailure", msgAuthFailure)
	}
	return a.AccessKeyID, nil
}

// signedHeadersOK reports whether the list is sorted, lower case and
// includes host and x-amz-date, as SigV4 requires.
func signedHeadersOK(hs []string) bool {
	if !sort.StringsAreSorted(hs) {
		return false
	}
	var host, date bool
	for _, h := range hs {
		if h != strings.ToLower(h) {
			return false
		}
		host = host || h == "host"
		date = date || h == "x-amz-date"
	}
	return host && date
}

// canonicalRequest builds the SigV4 canonical request of r over the
// signed headers, with the payload hash computed from body.
func canonicalRequest(r *http.Request, signed []string, body []byte) string {
	var hdrs strings.Builder
	for _, h := range signed {
		var vals []string
		switch h {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			vals = r.Header.Values(h)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		hdrs.WriteString(h + ":" + strings.Join(vals, ",") + "\n")
	}

	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	return strings.Join([]string{
		r.Method,
		path,
		canonicalQuery(r.URL.Query()),
		hdrs.String(),
		strings.Join(signed, ";"),
		hexSHA256(body),
	}, "\n")
}

// canonicalQuery encodes q sorted by key then value, with SigV4's
// escaping (spaces as %20).
func canonicalQuery(q url.Values) string {
	var pairs [][2]string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{sigEscape(k), sigEscape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p[0] + "=" + p[1]
	}
	return strings.Join(out, "&")
}

func sigEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
