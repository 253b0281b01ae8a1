package hosts

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// optionWant says, per option, what its value must look like.
var optionWant = map[string]string{
	"instance": "i- and 8 or 17 lowercase hex digits, e.g. i-0abc123def4567890",
	"mounts":   "comma-separated absolute mount points, e.g. /data,/var/lib/mysql",
	"volumes":  "comma-separated EBS volume IDs, e.g. vol-0abc123def4567890",
	"region":   "an AWS Region, e.g. eu-west-1",
	"user":     "a user name of letters, digits, '.', '_' and '-'",
	"port":     "a port number 1-65535",
}

// optionNames lists the options in the order messages and Format use.
const optionNames = "instance, mounts, volumes, region, user, port"

// regionPattern matches Region names such as eu-west-1, us-gov-west-1 and
// cn-north-1.
var regionPattern = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-[0-9]+$`)

// ValidRegion reports whether s looks like an AWS Region name
// (us-east-1, us-gov-west-1, eusc-de-east-1, …).
func ValidRegion(s string) bool { return regionPattern.MatchString(s) }

// parseInstanceID checks an EC2 instance ID.
func parseInstanceID(s string) (string, error) {
	if !isResourceID(s, "i-") {
		return "", fmt.Errorf("invalid instance ID %q (want %s)",
			s, optionWant["instance"])
	}
	return s, nil
}

// parseVolumes checks a comma-separated list of EBS volume IDs.
func parseVolumes(s string) ([]string, error) {
	var vols []string
	seen := make(map[string]bool)
	for _, v := range strings.Split(s, ",") {
		switch {
		case v == "":
			return nil, fmt.Errorf("empty element in volumes= (want %s)",
				optionWant["volumes"])
		case !isResourceID(v, "vol-"):
			return nil, fmt.Errorf("invalid volume ID %q "+
				"(want vol- and 8 or 17 lowercase hex digits)", v)
		case seen[v]:
			return nil, fmt.Errorf("duplicate volume %q in volumes=", v)
		}
		seen[v] = true
		vols = append(vols, v)
	}
	return vols, nil
}

// isResourceID reports whether s is prefix followed by 8 or 17 lowercase
// hex digits, the two lengths EC2 resource IDs have.
func isResourceID(s, prefix string) bool {
	hex, ok := strings.CutPrefix(s, prefix)
	if !ok || len(hex) != 8 && len(hex) != 17 {
		return false
	}
	for _, r := range hex {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// parseMounts decodes and checks a comma-separated list of mount points.
func parseMounts(s string) ([]string, error) {
	var mounts []string
	seen := make(map[string]bool)
	for _, raw := range strings.Split(s, ",") {
		if raw == "" {
			return nil, fmt.Errorf("empty element in mounts= (want %s)",
				optionWant["mounts"])
		}
		m, err := unescapeMount(raw)
		if err != nil {
			return nil, err
		}
		if err := checkMount(m); err != nil {
			return nil, err
		}
		if seen[m] {
			return nil, fmt.Errorf("duplicate mount point %q in mounts=", m)
		}
		seen[m] = true
		mounts = append(mounts, m)
	}
	return mounts, nil
}

// checkMount checks a decoded mount point: absolute, normalised, no
// control characters.
func checkMount(m string) error {
	for _, r := range m {
		if unicode.IsControl(r) {
			return fmt.Errorf("mount point %q contains control character "+
				"%U (not allowed)", m, r)
		}
	}
	if !strings.HasPrefix(m, "/") {
		return fmt.Errorf("mount point %q is not absolute "+
			"(want a path starting with /)", m)
	}
	if c := path.Clean(m); c != m {
		return fmt.Errorf("mount point %q is not normalised (want %q)", m, c)
	}
	return nil
}

// parseRegion checks an AWS Region name.
func parseRegion(s string) (string, error) {
	if !regionPattern.MatchString(s) {
		return "", fmt.Errorf("invalid region %q (want %s)",
			s, optionWant["region"])
	}
	return s, nil
}

// parseUserOption checks the value of user=.
func parseUserOption(s string) (string, error) {
	if err := checkUser(s); err != nil {
		return "", err
	}
	return s, nil
}
