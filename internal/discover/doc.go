// Package discover works out, from a host's own mount table and block
// device tree, which filesystems to freeze and which EBS volumes to
// snapshot, so the hosts file need not spell out mounts= and volumes=.
//
// It runs nothing itself and imports neither SSH nor the AWS SDK.
// [Command] gives the read-only shell command to run on the host (util-linux
// findmnt and lsblk, no root needed); [Parse] reads its output into a
// [Host]; [Resolve] turns that, the instance's block device mappings from
// DescribeInstances and the operator's [Options] into a [Plan].
//
// # Safety stance
//
// A consistent snapshot of the wrong volume, or of half a filesystem, is
// worse than none. So Resolve refuses rather than guesses: a filesystem
// that sits even partly on instance store, on a disk that matches no EBS
// mapping, or on a volume this instance does not have, is a [Problem], and
// any problem makes Resolve fail for the whole host. A volume that backs a
// filesystem the operator did not choose is either frozen too or refused
// (Options.Closure), so no part of a snapshot is taken live.
//
// # Discovery rules
//
//   - Filesystems are grouped by superblock (findmnt MAJ:MIN): bind mounts,
//     repeated mounts and btrfs subvolumes of one filesystem are frozen
//     once, through one mount point.
//   - Only ext2/3/4, xfs, btrfs, f2fs, jfs, nilfs2 and reiserfs can be
//     frozen (fsfreeze(8)). tmpfs, proc, sysfs, cgroup, overlay, squashfs,
//     nfs, cifs, fuse and the like are never chosen; naming one is a
//     problem.
//   - A mount's source device is walked down through partitions, LVM, md
//     RAID and dm-crypt (lsblk --inverse) to its whole disks; a btrfs
//     filesystem also takes every device lsblk shows with its UUID.
//   - A disk is an EBS volume by its NVMe serial (model "Amazon Elastic
//     Block Store", serial vol0123… is vol-0123…), which must be one of
//     the instance's mappings; otherwise by its kernel name against the
//     mappings' device names: exact, xvdX for sdX and back, with or without
//     /dev/, and a root mapping named sda1 or xvda1 for the whole disk
//     xvda or sda. NVMe names (nvme1n1) never match by name.
//   - Without Options.Chosen, every freezable filesystem backed only by EBS
//     is chosen, except / unless AllowRoot, and except any filesystem that
//     shares a volume with one that cannot be chosen.
//   - Filesystems are frozen deepest mount point first and thawed in
//     reverse (see Plan.Freeze for why).
//   - A read-only filesystem is never pulled in by closure: it cannot
//     change, so its part of a snapshot is consistent without a freeze.
package discover
