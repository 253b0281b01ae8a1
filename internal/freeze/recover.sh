# orchestrate recovery agent, protocol 1.
#
# Thaws what earlier freeze agents on this host recorded as frozen under
# /run/orchestrate/agent.PID/ and did not clean up because they died (or
# could not thaw), and nothing else. An agent that is still alive is left
# to finish on its own and reported. Output, one line each:
#   LIVE PID RUN_ID         a running agent, not touched
#   THAWED RUN_ID PATH      thawed now
#   NOTFROZEN RUN_ID PATH   recorded, but no longer frozen
#   THAWFAIL RUN_ID PATH    could not be thawed (fsfreeze's error on stderr)
#   DONE N                  N is the number of failures

trap '' PIPE
say() { printf '%s\n' "$*"; }
say "HELLO 1 $$ $(id -u)"
[ "$(id -u)" = 0 ] || { say "ERR notroot - must run as root (use --sudo)"; exit 1; }
command -v fsfreeze >/dev/null 2>&1 || { say "ERR nofsfreeze - fsfreeze is not installed"; exit 1; }

# ORCHESTRATE_TEST_STATE_DIR is for tests only: sudo resets the environment
# and orchestrate sends none, so it cannot be set from the operator side.

state=${ORCHESTRATE_TEST_STATE_DIR:-/run/orchestrate}
failures=0
[ -d "$state" ] || { say "DONE 0"; exit 0; }
exec 8>"$state/.mutex" && command -v flock >/dev/null 2>&1 && flock 8

for d in "$state"/agent.*; do
	[ -d "$d" ] || continue
	pid=${d##*/agent.}
	run=$(cat "$d/run-id" 2>/dev/null)
	if agent_alive "$pid"; then
		say "LIVE $pid $run"
		continue
	fi
	ok=1
	# One path a line, from frozen and from freezing (a mount whose freeze
	# may have been under way); globbing off, so a path is only data.
	list=$(cat "$d/frozen" "$d/freezing" 2>/dev/null)
	set -f
	saved_ifs=$IFS
	IFS='
'
	for p in $list; do
		IFS=$saved_ifs
		[ -n "$p" ] || continue
		if out=$(fsfreeze -u -- "$p" 2>&1); then
			say "THAWED $run $p"
		else
			case $out in
			*nvalid*) say "NOTFROZEN $run $p" ;;
			*)
				ok=0
				printf '%s\n' "$out" >&2
				say "THAWFAIL $run $p"
				;;
			esac
		fi
	done
	IFS=$saved_ifs
	set +f
	[ "$ok" = 1 ] || { failures=$((failures + 1)); continue; }
	while IFS= read -r l; do
		[ "$(cat "$l/pid" 2>/dev/null)" = "$pid" ] && rm -rf "$l"
	done <"$d/locks"
	rm -rf "$d"
done
say "DONE $failures"
