#!/usr/bin/env bash
# make demo: starts build/chat-server on a free port, lets three scripted clients talk,
# prints what each of them saw and checks that everyone heard everyone.
#
#   examples/demo.sh [BUILD_DIR]      (default: build)
#
# Exits non-zero when a client missed a message, a program failed or something hung.
# Needs only bash and coreutils.
set -u
cd "$(dirname "$0")/.." || exit 1
build=${1:-build}

# Each background job gets its own process group, so one kill stops a client's whole
# pipeline (its script and the chat-client it feeds).
set -m

names=(alice bob carol)
declare -A pid=() rc=()
server=
tmp=$(mktemp -d) || exit 1

cleanup() {
    for pgid in ${pid[@]+"${pid[@]}"} $server; do
        kill -KILL -- "-$pgid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# has_line FILE LINE: does FILE contain exactly LINE? (bash, not grep: see above)
has_line() {
    local l
    [ -r "$1" ] || return 1
    while IFS= read -r l; do
        [ "$l" = "$2" ] && return 0
    done <"$1"
    return 1
}

# show TITLE FILE: a section of the transcript.
show() {
    local l
    echo "=== $1"
    [ -r "$2" ] || return 0
    while IFS= read -r l; do
        printf '    %s\n' "$l"
    done <"$2"
}

transcript() {
    local name
    echo
    show "server log" "$tmp/server.log"
    for name in "${names[@]}"; do
        echo
        show "$name typed" "$tmp/$name.sent"
        show "$name saw (exit status ${rc[$name]:-none})" "$tmp/$name.out"
    done
    echo
}

fail() {
    transcript
    echo "demo: FAILED: $*" >&2
    exit 1
}

# wait_for FILE LINE: waits up to 5 s for FILE to contain LINE.
wait_for() {
    local i
    for ((i = 0; i < 100; i++)); do
        has_line "$1" "$2" && return 0
        sleep 0.05
    done
    fail "no line '$2' in $1 after 5 s"
}

# wait_exit PID SECONDS: waits for a background job; its exit status, or 124 if it hung.
wait_exit() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$1" 2>/dev/null && return 124
    wait "$1"
}

# say NAME: copies its here-doc to stdout (and to NAME.sent) one line at a time; a line
# "sleep N" pauses instead. It starts once every client has joined ("go"), so all scripts
# share one clock and the conversation comes out in the same order every time.
say() {
    local line
    while [ ! -e "$tmp/go" ]; do sleep 0.02; done
    while IFS= read -r line; do
        case $line in
            'sleep '*) sleep "${line#sleep }" ;;
            *)
                printf '%s\n' "$line" >>"$tmp/$1.sent"
                printf '%s\n' "$line"
                ;;
        esac
    done
}

# client NAME < SCRIPT: one chat-client typing SCRIPT, started in the background; returns
# once the room has announced it.
client() {
    # The braces make one job whose leader is $!, so cleanup can kill its group.
    { say "$1" | "$build/chat-client" "$url" --name "$1"; } >"$tmp/$1.out" 2>&1 &
    pid[$1]=$!
    wait_for "$tmp/$1.out" "$1 joined"
}

: >"$tmp/server.log" # exists before the loop below reads it
"$build/chat-server" 127.0.0.1:0 >>"$tmp/server.log" 2>&1 </dev/null &
server=$!
# Its first line tells the port the kernel picked.
first=
for ((i = 0; i < 100; i++)); do
    IFS= read -r first <"$tmp/server.log" && [[ $first == 'listening on '* ]] && break
    first=
    kill -0 "$server" 2>/dev/null || break # it died
    sleep 0.05
done
[ -n "$first" ] || fail "chat-server did not start"
url="ws://${first#listening on }/chat"
echo "chat-server is up; clients connect to $url"

# Timeline after "go" (seconds): 0.2 alice, 0.5 bob, 0.8 carol, 1.1 alice, 1.4 bob,
# 1.7 carol speak; then carol leaves at 2.0, bob at 2.3, alice at 2.6.
client alice <<'EOF'
sleep 0.2
hi everyone
sleep 0.9
lunch at noon?
sleep 1.5
EOF
client bob <<'EOF'
sleep 0.5
hi alice
sleep 0.9
noon works for me
sleep 0.9
EOF
client carol <<'EOF'
sleep 0.8
hello both
sleep 0.9
count me in
sleep 0.3
EOF
touch "$tmp/go"

for name in "${names[@]}"; do
    wait_exit "${pid[$name]}" 6
    rc[$name]=$?
done
kill -TERM "$server"
wait_exit "$server" 5
server_rc=$?
[ "$server_rc" = 124 ] || server= # a hung server is left to cleanup

transcript

# Everyone must have heard every line of everyone else, and left cleanly.
errors=()
for name in "${names[@]}"; do
    [ "${rc[$name]}" = 0 ] || errors+=("$name exited with status ${rc[$name]}")
    has_line "$tmp/$name.out" "closed 1000" || errors+=("$name did not see its close answered")
    for other in "${names[@]}"; do
        [ "$other" = "$name" ] && continue
        while IFS= read -r line; do
            has_line "$tmp/$name.out" "$other: $line" || errors+=("$name did not receive \"$other: $line\"")
        done <"$tmp/$other.sent"
    done
done
[ "$server_rc" = 0 ] || errors+=("chat-server exited with status $server_rc")

if [ ${#errors[@]} -gt 0 ]; then
    printf 'demo: %s\n' "${errors[@]}" >&2
    echo "demo: FAILED" >&2
    exit 1
fi
echo "demo: OK: every client received every other client's messages"
echo "demo: to chat from a browser, run $build/chat-server 127.0.0.1:8080 and open http://127.0.0.1:8080/"
echo "      (with --tls CERT KEY it serves https:// and wss:// on the same port)"
