package ec2sim

// This file owns what goes on the wire: the XML success envelope, the EC2
// error envelope, HTTP status codes and error messages.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// xmlns is the namespace of every EC2 response for API version apiVersion.
const (
	apiVersion = "2016-11-15"
	xmlns      = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// apiError is an EC2 error as the client sees it: a code, a message and
// the HTTP status that carries them.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// errf builds an apiError with a formatted message.
func errf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// httpStatus maps an error code to the status EC2 sends it with.
func httpStatus(code string) int {
	switch code {
	case "RequestLimitExceeded", "Unavailable", "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "InternalError", "ServerInternal":
		return http.StatusInternalServerError
	case "UnauthorizedOperation":
		return http.StatusForbidden
	case "AuthFailure":
		return http.StatusUnauthorized
	case "DryRunOperation":
		return http.StatusPreconditionFailed
	}
	return http.StatusBadRequest
}

// injectedMessage is the message EC2 sends with code, for faults set up
// with FailNext.
func injectedMessage(code string) string {
	switch code {
	case "RequestLimitExceeded":
		return "Request limit exceeded."
	case "InternalError", "ServerInternal":
		return "An internal error has occurred"
	case "Unavailable":
		return "The server is overloaded and can't handle the request."
	case "ServiceUnavailable":
		return "The request has failed due to a temporary failure of the server."
	case "UnauthorizedOperation":
		return deniedMessage()
	case "AuthFailure":
		return msgAuthFailure
	case "SnapshotCreationPerVolumeRateExceeded":
		return msgVolumeRate
	case "ConcurrentSnapshotLimitExceeded":
		return msgConcurrent
	case "IncorrectState":
		return "The request cannot be completed because the resource is in an incorrect state."
	case "RequestExpired":
		return "Request has expired."
	}
	return "The request failed with " + code + "."
}

const (
	msgAuthFailure = "AWS was not able to validate the provided access credentials"
	msgVolumeRate  = "The maximum per volume CreateSnapshot request rate has been exceeded. Use an increasing or variable sleep interval between requests."
	msgConcurrent  = "Maximum allowed in-progress snapshots for a single volume exceeded."
	msgDryRun      = "Request would have succeeded, but DryRun flag is set."
)

// deniedMessage is the UnauthorizedOperation message, with a fresh opaque
// encoded authorization failure message as EC2 appends.
func deniedMessage() string {
	b := make([]byte, 96)
	rand.Read(b)
	return "You are not authorized to perform this operation. " +
		"Encoded authorization failure message: " +
		base64.RawURLEncoding.EncodeToString(b)
}

// newRequestID returns a random version 4 UUID.
func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] +
		"-" + h[20:]
}

// envelope is the root of every success response: the element
// <ActionResponse> in the EC2 namespace, the request ID first, then the
// fields of the action's response struct.
type envelope struct {
	XMLName   xml.Name
	RequestID string `xml:"requestId"`
	Inner     []byte `xml:",innerxml"`
}

// writeXML sends body, an action's response struct whose fields are the
// children of the root element, with status 200.
func writeXML(w http.ResponseWriter, action, requestID string, body any) error {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	root := xml.StartElement{Name: xml.Name{Local: "r"}}
	if err := enc.EncodeElement(body, root); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	inner := bytes.TrimSuffix(bytes.TrimPrefix(buf.Bytes(), []byte("<r>")),
		[]byte("</r>"))
	out, err := xml.Marshal(envelope{
		XMLName:   xml.Name{Space: xmlns, Local: action + "Response"},
		RequestID: requestID,
		Inner:     inner,
	})
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append([]byte(xml.Header), out...))
	return err
}

// errorEnvelope is the EC2 error body. Note the capital ID in RequestID,
// unlike the requestId of success responses.
type errorEnvelope struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// writeError sends e in the EC2 error envelope with its HTTP status.
func writeError(w http.ResponseWriter, e *apiError, requestID string) {
	body := errorEnvelope{
		Errors:    []xmlError{{Code: e.Code, Message: e.Message}},
		RequestID: requestID,
	}
	out, _ := xml.Marshal(body)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(httpStatus(e.Code))
	w.Write(append([]byte(xml.Header), out...))
}

// xmlTime formats t as EC2 does: UTC with milliseconds.
func xmlTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// xmlTag is one member of a tagSet.
type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagSet renders tags sorted by key, so responses are stable.
func tagSet(tags map[string]string) []xmlTag {
	var out []xmlTag
	for _, k := range sortedKeys(tags) {
		out = append(out, xmlTag{Key: k, Value: tags[k]})
	}
	return out
}

// quoteIDs renders ids as EC2 does in NotFound messages: 'a, b'.
func quoteIDs(ids []string) string {
	return "'" + strings.Join(ids, ", ") + "'"
}
