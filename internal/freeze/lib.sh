# Shell functions shared by the agent, the recovery agent and the checks
# of orchestrate check; prepended to each of them.

# devof PATH prints the MAJ:MIN of the filesystem PATH really reaches. It
# uses stat: mountpoint -d reads the mount table, which also lists mounts
# that something mounted over a parent directory now hides.
devof() {
	d=$(stat -c %d -- "$1" 2>/dev/null) || return 1
	printf '%s:%s' $(((d >> 8 & 4095) | (d >> 32 & ~4095))) \
		$(((d & 255) | (d >> 12 & ~255)))
}

# agent_alive PID: the process is running (not a zombie that nobody has
# reaped yet) and is still an orchestrate agent, not a reused pid. Without
# /proc, kill -0 is all there is.
agent_alive() {
	if [ -r /proc/"$1"/stat ]; then
		st=$(cut -d')' -f2 /proc/"$1"/stat 2>/dev/null | cut -c2)
		case $st in '' | Z | X) return 1 ;; esac
		# The name is put together here, so that this text, which every
		# script carries, never matches itself: only an agent's arguments
		# hold it whole.
		n=orchestrate
		case $(tr '\000' ' ' </proc/"$1"/cmdline 2>/dev/null) in
		*" $n-agent "*) return 0 ;;
		esac
		return 1
	fi
	kill -0 "$1" 2>/dev/null
}
