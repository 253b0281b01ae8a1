# identify.sh: print this host's EC2 instance ID, read without credentials.
#
# Arguments: $1 metadata endpoint (http[s]://host[:port], no trailing
# slash), $2 sources to try in order ("dmi imds", "imds", ...), $3 seconds
# allowed for each HTTP request, $4 path of the DMI asset tag.
#
# Output, one line: "ID <source> <id>", then for imds maybe
# "REGION <region>"; or "NOID <reason>..." when no source gave an ID.
# The ID line is printed as soon as the ID is known, so a deadline that
# cuts the region request short still leaves the ID.
#
# Nothing here needs root. No credential is ever sent: curl -q skips
# .curlrc, wget --no-config skips wgetrc and netrc=off skips .netrc;
# proxies are bypassed; redirects are not followed; no environment
# variable reaches a request. Only IMDSv2 is spoken: without a token
# there is no request for the instance ID.
set -u
ep=$1
sources=$2
t=$3
dmi=$4
why=

# valid_id ID: is ID shaped like an instance ID (i- and 8 or 17 hex)?
valid_id() {
	case $1 in i-*) ;; *) return 1 ;; esac
	h=${1#i-}
	case $h in '' | *[!0-9a-f]*) return 1 ;; esac
	[ ${#h} -eq 8 ] || [ ${#h} -eq 17 ]
}

# fetch METHOD PATH HEADER: the body, at most 256 bytes, on stdout; a
# failed request (error status, timeout, refused) ends in a line "!".
fetch() {
	{
		case $client in
		curl)
			curl -q -g -f -s --noproxy '*' --proto =http,https \
				--connect-timeout "$t" --max-time "$t" \
				-X "$1" -H "$3" "$ep$2" || printf '\n!\n'
			;;
		wget)
			wget -q -O - --no-config -e netrc=off --no-proxy \
				--max-redirect=0 --tries=1 --timeout="$t" \
				--method="$1" --header="$3" "$ep$2" || printf '\n!\n'
			;;
		esac
	} 2>/dev/null | dd bs=1 count=256 2>/dev/null
}

# pick_client: curl if present, else a wget that can send PUT (GNU wget
# 1.18 or later; busybox wget cannot, so it is never used).
pick_client() {
	if command -v curl >/dev/null 2>&1; then
		client=curl
		return 0
	fi
	if ! command -v wget >/dev/null 2>&1; then
		why="$why imds:no-client"
		return 1
	fi
	help=$(wget --help 2>&1)
	case $help in
	*--method*--no-config* | *--no-config*--method*)
		client=wget
		return 0
		;;
	esac
	why="$why imds:wget-no-put"
	return 1
}

try_dmi() {
	tag=
	if ! [ -r "$dmi" ]; then
		why="$why dmi:absent"
		return 1
	fi
	IFS= read -r tag <"$dmi" 2>/dev/null || :
	if ! valid_id "$tag"; then
		why="$why dmi:not-id"
		return 1
	fi
	printf 'ID dmi %s\n' "$tag"
}

try_imds() {
	pick_client || return 1
	tok=$(fetch PUT /latest/api/token 'X-aws-ec2-metadata-token-ttl-seconds: 60')
	# A token is base64-like; anything else (or a header injection) is
	# refused before it goes into a header.
	case $tok in
	'' | *[!A-Za-z0-9_=+/.-]*)
		why="$why imds:no-token"
		return 1
		;;
	esac

	id=$(fetch GET /latest/meta-data/instance-id "X-aws-ec2-metadata-token: $tok")
	case $id in
	'' | *!)
		why="$why imds:no-id"
		return 1
		;;
	esac
	if ! valid_id "$id"; then
		why="$why imds:bad-id"
		return 1
	fi
	printf 'ID imds %s\n' "$id"

	# The Region is a bonus: older metadata services lack it.
	r=$(fetch GET /latest/meta-data/placement/region "X-aws-ec2-metadata-token: $tok")
	case $r in
	'' | *[!a-z0-9-]*) ;;
	*) printf 'REGION %s\n' "$r" ;;
	esac
	return 0
}

for s in $sources; do
	case $s in
	dmi) try_dmi && exit 0 ;;
	imds) try_imds && exit 0 ;;
	esac
done
printf 'NOID%s\n' "$why"
exit 0
