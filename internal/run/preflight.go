package run

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
)

// preflight does, for the whole fleet and before any SSH, everything on the
// EC2 side that can be slow or fail: credentials, one batched describe per
// region, each host's snapshot plan, and a dry run of each CreateSnapshots.
// A host that fails here is marked failed and never contacted. The error
// is for problems that stop the whole run.
func preflight(ctx context.Context, cfg *Config, fleet []*hostRun) error {
	start := time.Now()
	if err := cfg.EC2.Credentials(ctx); err != nil {
		return err
	}

	byRegion := map[string][]*hostRun{}
	for _, hr := range fleet {
		if hr.region == "" {
			hr.region = cfg.EC2.DefaultRegion()
		}
		if hr.region == "" {
			return fmt.Errorf("run: no AWS Region for %s (line %d): pass --region, "+
				"set region= in the hosts file, or configure a default Region",
				hr.rep.Destination, hr.rep.Line)
		}
		hr.rep.Region = hr.region
		byRegion[hr.region] = append(byRegion[hr.region], hr)
	}

	regions := make([]string, 0, len(byRegion))
	for r := range byRegion {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	var wg sync.WaitGroup
	for _, region := range regions {
		wg.Go(func() {
			resolveTargets(ctx, cfg, region, byRegion[region])
			describeRegion(ctx, cfg, region, byRegion[region])
		})
	}
	wg.Wait()
	// Credentials that EC2 refuses are the operator's configuration, not a
	// host's problem: stop the run before any host is contacted.
	for _, hr := range fleet {
		if isCredentialError(hr.preflightErr) {
			return hr.preflightErr
		}
	}

	dryRuns(ctx, cfg, fleet)
	for _, hr := range fleet {
		hr.rep.step(StepPreflight, start, hr.preflightErr)
		if hr.preflightErr != nil {
			hr.rep.fail(StepPreflight, hr.preflightErr)
		}
	}
	return nil
}

// describeRegion looks up the region's instances in one batched call and
// plans each host's snapshot set from the result.
func describeRegion(ctx context.Context, cfg *Config, region string, group []*hostRun) {
	ids := make([]string, 0, len(group))
	for _, hr := range group {
		if hr.preflightErr == nil {
			ids = append(ids, hr.host.InstanceID)
		}
	}
	found, err := cfg.EC2.Describe(ctx, region, ids)
	if err != nil {
		for _, hr := range group {
			hr.preflightErr = fmt.Errorf("describe instances in %s: %w", region, err)
		}
		return
	}
	for _, hr := range group {
		if hr.preflightErr != nil {
			continue
		}
		inst, ok := found[hr.host.InstanceID]
		if !ok {
			hr.preflightErr = fmt.Errorf("instance %s not found in %s "+
				"(wrong Region, or terminated?)", hr.host.InstanceID, region)
			continue
		}
		hr.inst = &inst
		hr.rep.InstanceID = inst.ID
		if hr.byID {
			if hr.preflightErr = hr.dialAddress(inst); hr.preflightErr != nil {
				continue
			}
		}
		if hr.needsDiscovery() {
			continue // planned on the host, after discovery
		}
		hr.plan, hr.preflightErr = snapshot.Plan(inst, hr.host.Volumes,
			hr.tags(), hr.description())
	}
}

// dryRuns proves, per host, that CreateSnapshots would be allowed with
// exactly the request that will be sent while frozen.
func dryRuns(ctx context.Context, cfg *Config, fleet []*hostRun) {
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for _, hr := range fleet {
		if hr.preflightErr != nil || hr.plan == nil {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := cfg.EC2.DryRun(ctx, hr.plan); err != nil {
				hr.preflightErr = fmt.Errorf("dry run: %w", err)
			}
		})
	}
	wg.Wait()
}

// credentialCodes are the EC2 error codes that mean the caller's
// credentials, not the request, are wrong.
var credentialCodes = map[string]bool{
	"AuthFailure": true, "InvalidClientTokenId": true, "SignatureDoesNotMatch": true,
	"RequestExpired": true, "ExpiredToken": true, "UnrecognizedClientException": true,
	"OptInRequired": true, "Blocked": true,
}

func isCredentialError(err error) bool {
	var ae *snapshot.APIError
	return errors.As(err, &ae) && credentialCodes[ae.Code]
}

// tags returns the tags every snapshot of the host gets at creation.
func (hr *hostRun) tags() map[string]string {
	t := map[string]string{"Name": "orchestrate " + hr.host.Destination}
	for k, v := range hr.cfg.Tags {
		t[k] = v // --tag Name=... replaces the default Name
	}
	t[snapshot.TagRunID] = hr.cfg.RunID
	t[snapshot.TagHost] = hr.host.Destination
	t[snapshot.TagInstanceID] = hr.host.InstanceID
	t[snapshot.TagMounts] = truncate(strings.Join(hr.host.Mounts, ","), 256)
	t[snapshot.TagConsistency] = snapshot.ConsistencyUnverified
	return t
}

func (hr *hostRun) description() string {
	return truncate(fmt.Sprintf("orchestrate run %s: %s %s",
		hr.cfg.RunID, hr.host.Destination, strings.Join(hr.host.Mounts, ",")), 255)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
