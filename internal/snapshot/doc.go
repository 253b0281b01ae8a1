// Package snapshot is orchestrate's EC2 side: it loads the operator's AWS
// configuration, looks instances up, plans one CreateSnapshots request per
// instance, checks it with a dry run, sends it, verifies and tags the
// result and waits for completion.
//
// # Safety
//
// The credentials are those of the SDK default chain on the operator's
// machine (environment, profiles, SSO, assumed roles); this package never
// sends them anywhere but to the EC2 endpoint and never logs them.
//
// Everything slow or likely to fail is meant to run before any
// filesystem is frozen: Credentials resolves the credentials now rather
// than lazily, Describe batches the instance look-ups, Plan refuses a
// request that would snapshot too much or too little, and DryRun has EC2
// authorise the exact request. Create is the only call made while
// filesystems are frozen: it is bounded by its context (and a default
// deadline when the context has none), retries only throttling and
// server errors, at most four attempts with at most two seconds between
// them, and never retries a request whose outcome is unknown, because
// CreateSnapshots has no idempotency token. Such a failure is marked
// with ErrOutcomeUnknown so the caller can look the run's snapshots up
// by tag (FindByTag) and treat them as not proven consistent.
package snapshot
