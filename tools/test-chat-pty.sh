#!/usr/bin/env bash
# Drives `harp-run chat` through a pseudo-terminal (tmux): two turns that reuse the KV cache,
# Ctrl-C during a reply, a context that overflows, long pastes (a 22,000-character /system and a
# 20,000-character multi-line message arrive whole: no 4095-byte canonical-mode cut), Ctrl-D
# during a reply (stops it and exits), and Ctrl-D to exit. Bounded in time; needs
# tmux and a release build. Usage: [VERBOSE=1] tools/test-chat-pty.sh [path/to/harp-run]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/harp-run}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
command -v tmux >/dev/null || { echo "test-chat-pty: tmux is not installed (tools/setup.sh installs it)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "test-chat-pty: $BIN not found (swift build -c release first)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "test-chat-pty: $MODEL missing, skipped" >&2; exit 0; }

SESSION=harp-chat-test-$$
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true' EXIT

fail() { echo "test-chat-pty: FAIL: $1" >&2; echo "---- screen ----" >&2; screen >&2; exit 1; }
screen() { tmux capture-pane -p -J -S - -t "$SESSION" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
# wait_for REGEX SECONDS: until the screen matches.
wait_for() {
  local deadline=$((SECONDS + $2))
  until screen | grep -Eq -- "$1"; do
    [ $SECONDS -lt $deadline ] || fail "timed out after $2 s waiting for /$1/"
    sleep 0.2
  done
}
prompts() { screen | grep -c '^> ' || true; }
# say TEXT: type a line and wait for the reply to end (a new prompt appears).
say() {
  local before; before=$(prompts)
  tmux send-keys -t "$SESSION" -l -- "$1"
  tmux send-keys -t "$SESSION" Enter
  local deadline=$((SECONDS + 60))
  until [ "$(prompts)" -gt "$before" ] && screen | tail -n 1 | grep -q '^> $'; do
    [ $SECONDS -lt $deadline ] || fail "no prompt after '$1'"
    sleep 0.2
  done
}
start() { # start ARGS...: a chat in a fresh tmux session
  tmux kill-session -t "$SESSION" 2>/dev/null || true
  tmux new-session -d -s "$SESSION" -x 160 -y 50 "$BIN chat -m $MODEL --seed 7 --repeat-penalty 1.3 $* ; echo CHAT-EXITED-\$?; sleep 60"
  wait_for '^> $' 60
}

echo "test-chat-pty: two turns, Ctrl-C, /stats, Ctrl-D" >&2
start -c 2048 -n 300
say "What is the capital of France?"
say "And what is the capital of Germany?"
say "/stats"
reused=$(screen | grep -Eo 'prompt [0-9]+ tokens \(([0-9]+) reused' | tail -n 1 | grep -Eo '\(([0-9]+)' | tr -d '(')
[ "${reused:-0}" -gt 30 ] || fail "the second turn reused ${reused:-0} cached tokens; expected the first turn's"
# story ANIMAL: ask for a long story and wait until the reply is streaming (text after the prompt line).
story() {
  tmux send-keys -t "$SESSION" -l "Write a very long story about a $1 who learns to bake bread."
  tmux send-keys -t "$SESSION" Enter
  local deadline=$((SECONDS + 30))
  until screen | sed -n "/$1 who learns/{n;p;}" | grep -q '[A-Za-z]'; do
    [ $SECONDS -lt $deadline ] || fail "the $1 story did not start"
    sleep 0.1
  done
}
story dragon
tmux send-keys -t "$SESSION" C-c
wait_for '^\[stopped\]' 10
wait_for '^> $' 10
say "Thank you."  # the chat goes on after an interrupted reply
tmux send-keys -t "$SESSION" C-d
wait_for 'CHAT-EXITED-0' 10
[ -z "${VERBOSE:-}" ] || screen >&2

echo "test-chat-pty: context overflow" >&2
start -c 160 -n 40
for q in "Tell me about the ocean." "Tell me about mountains." "Tell me about forests." "Tell me about deserts."; do say "$q"; done
screen | grep -q '^\[context full: dropped the [0-9]* oldest messages\]' || fail "no notice that old turns were dropped"
say "/stats"
tmux send-keys -t "$SESSION" C-d
wait_for 'CHAT-EXITED-0' 10
[ -z "${VERBOSE:-}" ] || screen >&2
echo "test-chat-pty: long pastes, Ctrl-D during a reply" >&2
# paste TEXT: a bracketed paste (tmux adds ESC[200~ ... ESC[201~ because the chat asked for it).
paste() {
  printf '%s' "$1" > "$PASTE_FILE"
  tmux load-buffer -b harp-paste "$PASTE_FILE"
  tmux paste-buffer -p -d -b harp-paste -t "$SESSION"
}
PASTE_FILE=$(mktemp)
trap 'rm -f "$PASTE_FILE"; tmux kill-session -t "$SESSION" 2>/dev/null || true' EXIT
start -c 2048 -n 40
system=$(python3 -c 'print(" ".join("sys%05d" % i for i in range(2750))[:22000], end="")')
tmux send-keys -t "$SESSION" -l "/system "
paste "$system"
tmux send-keys -t "$SESSION" Enter
wait_for '^\[system prompt set: 22000 characters\]' 30
# 20,000 characters over 20 lines: newlines inside a paste stay in the message (Enter inside the
# paste does not send it); too long for this context, so the chat reports its length.
message=$(python3 -c 'import sys; sys.stdout.write("".join("w%04d%s" % (i, "\n" if i % 150 == 149 else " ") for i in range(3400))[:19999] + "z")')
[ ${#message} -eq 20000 ] || fail "test text has ${#message} characters"
paste "$message"
tmux send-keys -t "$SESSION" Enter
wait_for '^\[cannot send this message \(20000 characters\)' 30
[ "$(screen | grep -c '^\[cannot send')" -eq 1 ] || fail "the paste was sent as more than one message"
say "/reset"
say "/system Be brief."
story cat
tmux send-keys -t "$SESSION" C-d
wait_for '^\[stopped\]' 10
wait_for 'CHAT-EXITED-0' 10
[ -z "${VERBOSE:-}" ] || screen >&2
echo "test-chat-pty: ok" >&2
