#!/bin/sh
# grok-get-gl-manifest.sh: a [remote] manifest_command for a replica whose
# origin serves its manifest through the get-grok-manifest gitolite command
# (in this directory) instead of over http:
#
#   [remote]
#   site = ssh://git@git.example.org
#   manifest_command = /usr/local/bin/grok-get-gl-manifest.sh
#
# It answers grok-pull the way a manifest_command must:
#   exit 0    the manifest (JSON) on stdout
#   exit 127  nothing on stdout: unchanged since the last call
#   exit 1    what went wrong, on stdout
# With --force (grok-pull's first pass, or grok-pull -n) the manifest is
# fetched even when unchanged.
#
# Settings, from the environment (for grok-pull@.service, a drop-in with
# Environment= lines) or the defaults here:
#   GROK_GL_REMOTE  ssh destination of the gitolite server (required),
#                   e.g. git@git.example.org
#   GROK_GL_SSH     the ssh command (default: ssh -o BatchMode=yes);
#                   split on spaces
#   GROK_GL_STATE   where the manifest time of the last answer is kept
#                   (default: ~/.cache/grokmirror/gl-manifest.REMOTE.mtime)
#
# The time is recorded when the manifest is handed to grok-pull. Should
# grok-pull then fail to use it, a later run with --force (every daemon
# start does one) fetches it again.

remote=${GROK_GL_REMOTE:-}
ssh_cmd=${GROK_GL_SSH:-ssh -o BatchMode=yes}
state=${GROK_GL_STATE:-${HOME:-/tmp}/.cache/grokmirror/gl-manifest.$remote.mtime}

if [ -z "$remote" ]; then
    echo "GROK_GL_REMOTE is not set: say which gitolite server to ask (user@host)"
    exit 1
fi

since=0
if [ "${1:-}" != "--force" ] && [ -r "$state" ]; then
    since=$(cat -- "$state")
    case "$since" in ''|*[!0-9]*) since=0 ;; esac
fi

answer=$(mktemp) || { echo "cannot create a temporary file"; exit 1; }
trap 'rm -f -- "$answer" "$answer.err"' EXIT

# shellcheck disable=SC2086
if ! $ssh_cmd "$remote" get-grok-manifest "$since" >"$answer" 2>"$answer.err"; then
    echo "asking $remote for the manifest failed: $(cat -- "$answer" "$answer.err" | head -c 500 | tr '\n' ' ')"
    exit 1
fi

IFS= read -r status <"$answer"
case "$status" in
    unchanged)
        exit 127
        ;;
    mtime=*)
        mtime=${status#mtime=}
        case "$mtime" in ''|*[!0-9]*)
            echo "$remote sent a bad manifest time: $status"; exit 1 ;;
        esac
        if ! tail -n +2 -- "$answer"; then
            echo "cannot print the manifest from $remote"
            exit 1
        fi
        mkdir -p -- "$(dirname -- "$state")" &&
            printf '%s\n' "$mtime" >"$state.tmp" &&
            mv -f -- "$state.tmp" "$state" ||
            echo "warning: cannot record the manifest time in $state" >&2
        exit 0
        ;;
    *)
        echo "$remote did not send a manifest: $(head -c 500 "$answer" | tr '\n' ' ')"
        exit 1
        ;;
esac
