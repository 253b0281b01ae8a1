package discover

// script is what Command runs under /bin/sh. It holds no single quote, so
// Command can wrap it in one pair of them. It only reads: findmnt and
// lsblk print, cat reads sysfs, and nothing is written to any file.
//
// Output framing, one marker per line (a marker starts with '@', which no
// line of findmnt's or lsblk's JSON and no sysfs line can start with):
//
//	@orchestrate-discover 1
//	@findmnt
//	<findmnt -J -l output>
//	@findmnt-exit <status>
//	@lsblk <columns variant>
//	<lsblk -J -s output>
//	@lsblk-exit <status>
//	@sysfs
//	<kname TAB serial TAB model, one line per /sys/block disk with a device>
//	@end
//
// lsblk gained PATH in util-linux 2.33 and MOUNTPOINTS in 2.37, so the
// column list falls back twice; an unknown column makes lsblk fail before
// it prints anything. The sysfs lines give the serial and model where
// lsblk has no udev database to read them from (containers, minimal
// images).
const script = `PATH=$PATH:/usr/bin:/bin:/usr/sbin:/sbin
LC_ALL=C
export PATH LC_ALL
echo "@orchestrate-discover 1"
echo "@findmnt"
findmnt -J -l -k -o TARGET,SOURCE,FSTYPE,MAJ:MIN,OPTIONS,FSROOT
echo "@findmnt-exit $?"
c=NAME,KNAME,PKNAME,TYPE,SERIAL,MODEL,MAJ:MIN,FSTYPE,UUID
if o=$(lsblk -J -b -s -o "$c,PATH,MOUNTPOINTS" 2>/dev/null); then
	r=0 v=mountpoints
elif o=$(lsblk -J -b -s -o "$c,PATH,MOUNTPOINT" 2>/dev/null); then
	r=0 v=mountpoint
else
	o=$(lsblk -J -b -s -o "$c,MOUNTPOINT")
	r=$? v=mountpoint-nopath
fi
echo "@lsblk $v"
printf "%s\n" "$o"
echo "@lsblk-exit $r"
echo "@sysfs"
for d in /sys/block/*; do
	[ -e "$d/device" ] || continue
	s=$(cat "$d/device/serial" 2>/dev/null)
	m=$(cat "$d/device/model" 2>/dev/null)
	printf "%s\t%s\t%s\n" "${d##*/}" "$s" "$m"
done
echo "@end"
`

// Command returns the command line to run on the host, as one string for
// its login shell (any POSIX shell): exec /bin/sh -c '…'. It needs
// util-linux findmnt and lsblk with JSON output (2.27 or later) and no
// root, and it writes nothing anywhere. Its standard output is what
// [Parse] reads; findmnt and lsblk report trouble on standard error, which
// the caller should keep for its error message. It exits 0 even when
// findmnt or lsblk fail: Parse reports that from the output.
func Command() string {
	return "exec /bin/sh -c '" + script + "'"
}
