package discover

import "strings"

// fsClass says what kind of filesystem an fstype names, and so whether it
// can be frozen and snapshotted.
type fsClass int

const (
	classFreezable fsClass = iota // on block devices, with freeze support
	classLocal                    // on block devices, no freeze support
	classMemory
	classPseudo
	classOverlay
	classImage
	classNetwork
	classFuse
)

// freezable are the filesystems fsfreeze(8) lists as supporting a freeze.
var freezable = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "ext4dev": true, "xfs": true,
	"btrfs": true, "f2fs": true, "jfs": true, "nilfs2": true,
	"reiserfs": true,
}

var classes = map[string]fsClass{
	"tmpfs": classMemory, "ramfs": classMemory, "devtmpfs": classMemory,

	"proc": classPseudo, "sysfs": classPseudo, "devpts": classPseudo,
	"cgroup": classPseudo, "cgroup2": classPseudo, "securityfs": classPseudo,
	"debugfs": classPseudo, "tracefs": classPseudo, "pstore": classPseudo,
	"bpf": classPseudo, "mqueue": classPseudo, "hugetlbfs": classPseudo,
	"configfs": classPseudo, "fusectl": classPseudo, "efivarfs": classPseudo,
	"binfmt_misc": classPseudo, "autofs": classPseudo, "nsfs": classPseudo,
	"rpc_pipefs": classPseudo, "selinuxfs": classPseudo, "nfsd": classPseudo,
	"devfs": classPseudo, "usbfs": classPseudo, "sockfs": classPseudo,
	"pipefs": classPseudo, "zonefs": classLocal,

	"overlay": classOverlay, "overlayfs": classOverlay, "aufs": classOverlay,
	"unionfs": classOverlay,

	"squashfs": classImage, "iso9660": classImage, "erofs": classImage,
	"cramfs": classImage, "udf": classImage,

	"nfs": classNetwork, "nfs4": classNetwork, "cifs": classNetwork,
	"smb3": classNetwork, "smbfs": classNetwork, "ceph": classNetwork,
	"glusterfs": classNetwork, "9p": classNetwork, "virtiofs": classNetwork,
	"afs": classNetwork, "lustre": classNetwork, "gpfs": classNetwork,
	"beegfs": classNetwork, "efs": classNetwork,

	"fuse": classFuse, "fuseblk": classFuse,
}

func classify(fstype string) fsClass {
	if freezable[fstype] {
		return classFreezable
	}
	if c, ok := classes[fstype]; ok {
		return c
	}
	if strings.HasPrefix(fstype, "fuse.") {
		return classFuse
	}
	return classLocal
}

// why says why a filesystem of class c cannot be frozen and snapshotted.
func (c fsClass) why(fstype string) string {
	switch c {
	case classMemory:
		return "is " + fstype + ", a memory filesystem: there is no volume to snapshot"
	case classPseudo:
		return "is " + fstype + ", a kernel pseudo filesystem: there is no volume to snapshot"
	case classOverlay:
		return "is " + fstype + ", an overlay: choose the filesystems that hold its layers instead"
	case classImage:
		return "is " + fstype + ", a read-only image, which fsfreeze cannot freeze"
	case classNetwork:
		return "is " + fstype + ", a network filesystem, not on this instance's EBS volumes"
	case classFuse:
		return "is " + fstype + ", a FUSE filesystem, which fsfreeze cannot freeze"
	case classLocal:
		return "is " + fstype + ", which does not support fsfreeze (only ext2/3/4, xfs, btrfs, f2fs, jfs, nilfs2 and reiserfs do)"
	}
	return ""
}
