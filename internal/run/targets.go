package run

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"sort"

	"github.com/orchestrate-dev/orchestrate/internal/snapshot"
	"github.com/orchestrate-dev/orchestrate/internal/sshexec"
)

// A host can name its instance three ways: instance= in the hosts file, a
// destination that is the instance ID itself (its address then comes from
// EC2, see Config.Address), or neither, when the instance is found by the
// destination's address. resolveTargets settles the instance ID of every
// host of a region with batched EC2 look-ups, before any SSH.

var instanceIDPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// IsInstanceID reports whether s is an EC2 instance ID (i- and 8 or 17
// lowercase hex digits), as a destination naming its instance.
func IsInstanceID(s string) bool { return instanceIDPattern.MatchString(s) }

// resolveTargets fills in the instance ID of the region's hosts that do
// not name one, and marks the hosts whose destination is an instance ID.
func resolveTargets(ctx context.Context, cfg *Config, region string, group []*hostRun) {
	byAddr := map[string][]*hostRun{}
	for _, hr := range group {
		switch {
		case instanceIDPattern.MatchString(hr.host.Addr):
			if hr.host.InstanceID != "" && hr.host.InstanceID != hr.host.Addr {
				hr.preflightErr = fmt.Errorf("destination %s and instance=%s name "+
					"different instances", hr.host.Addr, hr.host.InstanceID)
				continue
			}
			hr.host.InstanceID, hr.byID = hr.host.Addr, true
		case hr.host.InstanceID == "":
			// An ssh_config alias is looked up by its HostName.
			addr, err := lookupAddress(cfg, hr.target)
			if err != nil {
				hr.preflightErr = err
				continue
			}
			byAddr[addr] = append(byAddr[addr], hr)
		}
	}
	if len(byAddr) == 0 {
		return
	}

	var ips, names []string
	for a := range byAddr {
		if net.ParseIP(a) != nil {
			ips = append(ips, a)
		} else {
			names = append(names, a)
		}
	}
	sort.Strings(ips)
	sort.Strings(names)
	found := map[string]map[string]bool{} // address -> instance IDs
	lookErr := map[string]error{}         // address -> why it could not be looked up
	look := func(filter string, values []string, addr func(snapshot.Instance) string) {
		if len(values) == 0 {
			return
		}
		insts, err := cfg.EC2.Find(ctx, region, map[string][]string{filter: values})
		if err != nil {
			// Only the hosts this look-up was for fail.
			for _, v := range values {
				lookErr[v] = fmt.Errorf("%s: %w", filter, err)
			}
			return
		}
		for _, in := range insts {
			if a := addr(in); a != "" {
				if found[a] == nil {
					found[a] = map[string]bool{}
				}
				found[a][in.ID] = true
			}
		}
	}
	look("private-ip-address", ips, func(i snapshot.Instance) string { return i.PrivateIP })
	look("ip-address", ips, func(i snapshot.Instance) string { return i.PublicIP })
	look("private-dns-name", names, func(i snapshot.Instance) string { return i.PrivateDNS })
	look("dns-name", names, func(i snapshot.Instance) string { return i.PublicDNS })

	for a, hrs := range byAddr {
		var ids []string
		for id := range found[a] {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, hr := range hrs {
			switch {
			case len(ids) == 0 && lookErr[a] != nil:
				hr.preflightErr = fmt.Errorf("look up the instance at %s: %w", a, lookErr[a])
			case len(ids) == 0:
				hr.preflightErr = fmt.Errorf("no instance in %s has the address %s "+
					"(add instance= to its line)", region, a)
			case len(ids) > 1:
				hr.preflightErr = fmt.Errorf("several instances in %s have the address "+
					"%s: %v (add instance= to its line)", region, a, ids)
			default:
				hr.host.InstanceID = ids[0]
				hr.rep.InstanceID = ids[0]
				hr.log = hr.log.With("instance", ids[0])
			}
		}
	}
}

// lookupAddress is the address to find t's instance by: its ssh_config
// HostName when it is an alias, else its own address.
func lookupAddress(cfg *Config, t sshexec.Target) (string, error) {
	if cfg.SSHConfig == nil {
		return t.Addr, nil
	}
	t2, _, err := cfg.SSHConfig.Apply(t, cfg.SSH, cfg.Explicit)
	if err != nil {
		return "", err
	}
	return t2.Addr, nil
}

// dialAddress gives a host whose destination is an instance ID the
// address to dial, by Config.Address: private (default), public or dns.
func (hr *hostRun) dialAddress(inst snapshot.Instance) error {
	var addr string
	switch hr.cfg.Address {
	case "public":
		addr = inst.PublicIP
	case "dns":
		addr = inst.PrivateDNS
		if addr == "" {
			addr = inst.PublicDNS
		}
	default:
		addr = inst.PrivateIP
	}
	if addr == "" {
		return fmt.Errorf("instance %s has no %s address to connect to (see --address)",
			inst.ID, orDefault(hr.cfg.Address, "private"))
	}
	hr.target.Addr = addr
	hr.rep.Address = address(hr.target, hr.cfg.SSH.Port)
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
