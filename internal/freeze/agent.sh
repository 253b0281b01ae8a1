# orchestrate freeze agent, protocol 1.
#
# Sent as one argument of `sh -c` over SSH; nothing is installed on the host.
# Arguments: NONCE RUN_ID TIMEOUT_SECONDS ALLOW_ROOT MOUNT...
#
# It reads commands on stdin (FREEZE, THAW) and answers on stdout, one line
# each, starting with "HELLO 1 NONCE": whatever the login shell printed
# before is not protocol. Mount points are referred to by index, never
# echoed, so a hostile path cannot forge a protocol line.
#
# Safety contract:
#   - every path is checked to be a canonical mount point, not "/" unless
#     ALLOW_ROOT is 1, and not a second mount of one filesystem; nothing is
#     frozen unless every check passes;
#   - it freezes in argument order and thaws in reverse;
#   - it thaws on THAW, on end of input, on HUP/INT/TERM, and at the
#     deadline, TIMEOUT_SECONDS after READY (FREEZE follows READY at once),
#     whichever comes first; without FREEZE it just gives up then;
#   - a watchdog in its own session thaws at the deadline plus a grace
#     period even if this shell is killed; a clean finish stops it;
#   - it only thaws what it froze: a filesystem that is already frozen
#     (EBUSY) is reported and left alone;
#   - after thawing it proves each filesystem takes a write again;
#   - it writes nothing to a filesystem it froze: its state lives in /run.

nonce=$1 run_id=$2 timeout=$3 allow_root=$4
shift 4

# A lost connection must not kill the agent mid-thaw: with SIGPIPE ignored,
# a write to a closed stdout fails and the thaw goes on.
trap '' PIPE

say() { printf '%s\n' "$*"; }
fail() { say "ERR $*"; exit 1; }
now_us() {
	t=$(date +%s%N 2>/dev/null)
	case $t in
	*[!0-9]* | '') t=$(cut -d' ' -f1 /proc/uptime | tr -d .)0000 ;;
	*) t=${t%???} ;;
	esac
	printf '%s' "$t"
}

say "HELLO 1 $nonce $$ $(id -u)"
[ "$(id -u)" = 0 ] || fail "notroot - the agent must run as root (use --sudo)"
command -v fsfreeze >/dev/null 2>&1 || fail "nofsfreeze - fsfreeze (util-linux) is not installed"
[ $# -gt 0 ] || fail "nomounts - no mount points given"

# Validate every path before touching any of them. A mount may come as
# MAJ:MIN/path: the device discovery saw there; the path must still
# resolve to it (devof, in lib.sh).
n=$#
i=0
devs=' '
for a in "$@"; do
	case $a in
	/*) want='' p=$a ;;
	[0-9]*:[0-9]*/*) want=${a%%/*} p=/${a#*/} ;;
	*) fail "badpath $i not an absolute path" ;;
	esac
	case $want in
	*[!0-9:]* | *:*:*) fail "badpath $i bad device $want" ;;
	esac
	case $p in
	*'
'*) fail "badpath $i contains a newline" ;;
	esac
	real=$(cd -P -- "$p" 2>/dev/null && pwd -P) || fail "nodir $i not a directory"
	[ "$real" = "$p" ] || fail "symlink $i resolves to another path (a symlink?)"
	mountpoint -q -- "$p" || fail "notmount $i not a mount point"
	if [ "$p" = / ] && [ "$allow_root" != 1 ]; then
		fail "root $i refusing to freeze / without --allow-root-freeze"
	fi
	dev=$(devof "$p") || fail "notmount $i cannot stat it"
	if [ -n "$want" ] && [ "$dev" != "$want" ]; then
		fail "moved $i reaches device $dev, not $want as discovered: another filesystem is mounted over it or it was moved"
	fi
	case $devs in
	*" $dev "*) fail "samefs $i shares a filesystem with an earlier mount" ;;
	esac
	devs="$devs$dev "
	eval "path_$i=\$p"
	i=$((i + 1))
done
# From here on "$@" holds the bare paths.
set --
j=0
while [ "$j" -lt "$n" ]; do
	eval "set -- \"\$@\" \"\$path_$j\""
	j=$((j + 1))
done
say "CHECKED $i"

# The timer sends this shell USR1 at the deadline. It is a new sh, not a
# subshell, so it inherits none of this shell's traps, and it signals only
# a process that is still this agent, never a reused pid.
timer_script='trap '"'"'kill $! 2>/dev/null; exit 0'"'"' TERM
sleep "$1" &
wait $! || exit 0
case $(tr "\\000" " " </proc/"$2"/cmdline 2>/dev/null) in
*" orchestrate-agent $3 "*) kill -USR1 "$2" ;;
esac'
timer=''
start_timer() {
	/bin/sh -c "$timer_script" orchestrate-timer "$timeout" $$ "$nonce" \
		</dev/null >/dev/null 2>&1 &
	timer=$!
}

# stop_timer kills the timer and checks it is gone: a TERM that lands
# between its fork and its exec is lost, so it is sent again.
stop_timer() {
	[ -n "$timer" ] || return 0
	k=0
	while [ "$k" -lt 50 ]; do
		kill "$timer" 2>/dev/null || break
		st=$(cut -d')' -f2 /proc/"$timer"/stat 2>/dev/null | cut -c2)
		case $st in '' | Z) break ;; esac
		sleep 0.01 2>/dev/null || sleep 1
		k=$((k + 1))
	done
	timer=''
}


# One run at a time per filesystem: a lock directory per device on tmpfs,
# holding the pid of its agent. Per filesystem rather than per host, because
# the conflict is two runs freezing one superblock (it also lets test hosts
# share one kernel). Every change to locks happens under a short flock on
# .mutex, so two agents can never both take over one stale lock.
# ORCHESTRATE_TEST_STATE_DIR is for tests only: sudo resets the environment
# and orchestrate sends none, so it cannot be set from the operator side.
state=${ORCHESTRATE_TEST_STATE_DIR:-/run/orchestrate}
mkdir -p "$state" 2>/dev/null && chmod 700 "$state" ||
	fail "nostate - cannot create $state"
me=$state/agent.$$
mutex_on() {
	exec 8>"$state/.mutex" && command -v flock >/dev/null 2>&1 && flock 8
}
mutex_off() { exec 8>&-; }

# release drops this agent's locks and state, under the mutex.
release() {
	mutex_on
	while IFS= read -r l; do
		[ "$(cat "$l/pid" 2>/dev/null)" = "$$" ] && rm -rf "$l"
	done <"$me/locks"
	rm -rf "$me"
	mutex_off
}

mutex_on
rm -rf "$me"
mkdir "$me" || fail "nostate - cannot create $me"
printf '%s\n' "$run_id" >"$me/run-id"
: >"$me/frozen"
: >"$me/freezing"
: >"$me/locks"
for dev in $devs; do
	l=$state/fs.$(printf '%s' "$dev" | tr : _)
	if ! mkdir "$l" 2>/dev/null; then
		holder=$(cat "$l/pid" 2>/dev/null)
		if [ -n "$holder" ] && agent_alive "$holder"; then
			mutex_off
			release
			fail "locked - another orchestrate run (pid $holder) holds $l"
		fi
		if [ -s "$state/agent.$holder/frozen" ]; then
			mutex_off
			release
			fail "stale - a run that died (pid $holder, run $(cat "$state/agent.$holder/run-id" 2>/dev/null)) left filesystems frozen: run orchestrate thaw"
		fi
		rm -rf "$l" && mkdir "$l" || {
			mutex_off
			release
			fail "locked - could not take over the stale lock $l"
		}
	fi
	printf '%s\n' "$$" >"$l/pid"
	printf '%s\n' "$l" >>"$me/locks"
done
mutex_off

sync
start_timer
say "READY"

count=0
watchdog=''
window_start=''

# probe proves a thawed filesystem takes writes: a file created and removed
# in a background job, given 5 seconds. A job that ends at all, even with
# an error (say a read-only mount), shows the filesystem is not frozen.
probe() {
	f=$1/.orchestrate-probe.$$
	(: >"$f" && rm -f -- "$f") </dev/null >/dev/null 2>&1 &
	pp=$!
	if sleep 0.01 2>/dev/null; then tick=0.01 max=500; else tick=1 max=5; fi
	k=0
	while kill -0 "$pp" 2>/dev/null; do
		k=$((k + 1))
		[ "$k" -gt "$max" ] && return 1
		sleep "$tick"
	done
	return 0
}

thaw_all() {
	trap '' HUP INT TERM USR1
	n=$count
	failed=0
	while [ "$n" -gt 0 ]; do
		n=$((n - 1))
		eval "p=\${frozen_$n}"
		eval "idx=\${frozen_idx_$n}"
		if out=$(fsfreeze -u -- "$p" 2>&1); then
			say "THAWED $idx"
		else
			failed=1
			say "THAWFAIL $idx $(printf '%s' "$out" | tr '\n' ' ')"
		fi
	done
	end=$(now_us)
	if [ -n "$window_start" ] && [ "$count" -gt 0 ]; then
		say "WINDOW $((end - window_start))"
		window_start=''
	fi
	n=$count
	while [ "$n" -gt 0 ]; do
		n=$((n - 1))
		eval "p=\${frozen_$n}"
		eval "idx=\${frozen_idx_$n}"
		if probe "$p"; then
			say "PROBED $idx"
		else
			failed=1
			say "PROBEFAIL $idx a write still blocks after the thaw"
		fi
	done
	count=0
	stop_timer
	# Keep the watchdog and the record when anything failed: the watchdog
	# retries at its deadline and `orchestrate thaw` can find the record.
	if [ "$failed" = 0 ]; then
		[ -n "$watchdog" ] && { kill -- "-$watchdog" 2>/dev/null || kill "$watchdog" 2>/dev/null; }
		release
	fi
	return "$failed"
}

# is_main is true only in the agent's own shell. dash keeps the parent's
# trap handlers in a subshell until that subshell sets traps of its own, so
# a signal caught by a command substitution or a background job must not
# run finish there: it would release the locks and record of an agent that
# is still frozen.
is_main() { [ "$(exec /bin/sh -c 'echo "$PPID"')" = "$$" ]; }

finish() {
	is_main || exit 0
	thaw_all
	st=$?
	say "DONE $1"
	exit "$st"
}

trap 'finish signal' HUP INT TERM
trap 'finish deadline' USR1

# Wait for FREEZE. End of input here means the operator gave up.
IFS= read -r cmd || finish eof
[ "$cmd" = FREEZE ] || finish "unexpected-$cmd"

# The watchdog lives in its own session, outside this shell's process
# group, so it survives the agent, sudo and the SSH session being killed.
# It thaws only what the agent's frozen list names, and only if the agent
# has not finished (a clean finish removes the agent's state directory).
wd_script='
sleep "$1"
[ "$(cat "$2/run-id" 2>/dev/null)" = "$3" ] || exit 0
cat "$2/frozen" "$2/freezing" | while IFS= read -r p; do fsfreeze -u -- "$p"; done
exec 8>"$4/.mutex" && command -v flock >/dev/null 2>&1 && flock 8
while IFS= read -r l; do
[ "$(cat "$l/pid" 2>/dev/null)" = "$5" ] && rm -rf "$l"
done <"$2/locks"
rm -rf "$2"
'
if command -v setsid >/dev/null 2>&1; then
	setsid /bin/sh -c "$wd_script" orchestrate-watchdog \
		$((timeout + 2)) "$me" "$run_id" "$state" $$ </dev/null >/dev/null 2>&1 &
else
	/bin/sh -c "$wd_script" orchestrate-watchdog \
		$((timeout + 2)) "$me" "$run_id" "$state" $$ </dev/null >/dev/null 2>&1 &
fi
watchdog=$!

# While freezing, signals are only noted and acted on between mounts:
# dash runs a trap as soon as a command substitution ends, which could be
# after fsfreeze -f froze a mount and before it is counted. Each mount is
# written to "freezing" before fsfreeze -f runs and moved to "frozen" once
# it is frozen, so the watchdog and orchestrate thaw know it even if this
# shell is killed in between; a failed freeze clears it. Only shell
# builtins run between the first freeze and the last thaw, besides
# fsfreeze itself and the two clock reads: a fork is milliseconds.
pending=''
trap 'pending=signal' HUP INT TERM
trap 'pending=deadline' USR1
i=0
window_start=$(now_us)
for p in "$@"; do
	printf '%s\n' "$p" >"$me/freezing"
	if out=$(fsfreeze -f -- "$p" 2>&1); then
		printf '%s\n' "$p" >>"$me/frozen"
		: >"$me/freezing"
		eval "frozen_$count=\$p"
		eval "frozen_idx_$count=$i"
		count=$((count + 1))
		say "FROZEN $i"
	else
		: >"$me/freezing"
		case $out in
		*busy* | *Busy*) say "ERR busy $i already frozen by someone else" ;;
		*) say "ERR freeze $i $(printf '%s' "$out" | tr '\n' ' ')" ;;
		esac
		pending=${pending:-freeze-failed}
	fi
	[ -n "$pending" ] && break
	i=$((i + 1))
done
trap 'finish signal' HUP INT TERM
trap 'finish deadline' USR1
[ -n "$pending" ] && finish "$pending"
say "FROZE"

IFS= read -r cmd || finish eof
case $cmd in
THAW) finish thaw ;;
*) finish "unexpected-$cmd" ;;
esac
