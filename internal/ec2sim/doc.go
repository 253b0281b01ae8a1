// Package ec2sim is an in-memory emulator of the parts of the Amazon EC2
// Query API that orchestrate uses, for tests and rehearsals with the real
// aws-sdk-go-v2 client pointed at it (ec2.Options.BaseEndpoint).
//
// # Safety
//
// The emulator holds no real credentials and reaches no network; it
// serves whatever listener it is given and is meant for loopback only.
// The only files it writes are snapshot images under
// Options.SnapshotDir and the paths named to ExportSnapshot; it only reads
// the backing files the fixture names.
//
// # EC2 API
//
// Requests are form POSTs (or GETs with a query string) carrying Action
// and Version=2016-11-15, signed with SigV4 by a key of the fixture and
// scoped to its region and service ec2. Responses are the XML documents
// EC2 sends: <ActionResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
// with <requestId> first and lists as <item>; errors use the envelope
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>
// with a non-2xx status (AuthFailure 401, UnauthorizedOperation 403,
// DryRunOperation 412, InternalError 500, RequestLimitExceeded and
// Unavailable 503, other codes 400).
//
// Each call goes through these steps, in order; the first that fails
// answers it: the latency set with SetLatency; authentication
// (AuthFailure, or RequestExpired when X-Amz-Date is more than 15 minutes
// off the real clock); Action and Version (MissingAction, InvalidAction,
// MissingParameter, NoSuchVersion); a failure queued with FailNext; a
// denial set with Deny (UnauthorizedOperation); the action's parameter
// and resource checks; DryRun (DryRunOperation); the action.
//
// Actions: DescribeInstances, DescribeVolumes, CreateSnapshot,
// CreateSnapshots, DescribeSnapshots, CreateTags, DeleteSnapshot. Filter
// values accept the * and ? wildcards. MaxResults pages with an opaque
// NextToken and cannot be combined with a list of IDs. Create calls also
// enforce, per volume, EC2's limit of 5 (st1 and sc1: 1) snapshots
// pending or in error, and the rate set with SetVolumeRateLimit.
//
// A created snapshot is pending, its progress rising from 0% to 100%,
// for Options.CompleteAfter after its start time, then completed (or in
// error, see FailSnapshotsOf). All snapshots of one CreateSnapshots call
// share one start time. When a volume has a backing file, its bytes are
// copied to SnapshotDir/<snapshot-id>.img while the create call is
// handled, before it is answered: that is the snapshot's point in time.
// Snapshots seeded by the fixture keep the state they were given.
//
// # Control API
//
// Under /_ec2sim/ on the same listener, without authentication, JSON:
//
//	GET  /_ec2sim/snapshots  every snapshot, as Snapshots returns them
//	GET  /_ec2sim/calls      every EC2 call, as Calls returns them
//	POST /_ec2sim/faults     a FaultRequest; answers {"ok":true}
//	POST /_ec2sim/export     an ExportRequest; answers {"path":...}
//
// Errors answer {"error":"..."} with status 400, or 404 for an unknown
// route or snapshot.
package ec2sim
