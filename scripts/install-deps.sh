#!/bin/sh
# Installs, on Debian as root, the system tools that `make demo` and the
# end-to-end tests use, if any is missing. Does nothing when all are there.
set -eu

need=""
check() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || need="$need $2"; }
check sshd openssh-server
check ssh openssh-client
check ssh-keygen openssh-client
check sudo sudo
check mkfs.xfs xfsprogs
check xfs_repair xfsprogs
check mkfs.ext4 e2fsprogs
check e2fsck e2fsprogs
check dumpe2fs e2fsprogs
check fsfreeze util-linux
check losetup mount
check sfdisk fdisk

need=$(printf '%s\n' $need | sort -u | tr '\n' ' ')
if [ -z "$(printf '%s' "$need" | tr -d ' ')" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$need; run as root (or apt-get install them)" >&2
	exit 1
fi
echo "install-deps: installing $need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
