#!/usr/bin/env python3
"""Hostile-client measurements of `harp-run serve` on 127.0.0.1 (issue 13's targets):

  1. while two clients send 40,000-character stop strings (and two more send the largest accepted
     stop lists) and 64 slow sockets trickle one byte a second, a normal 4-token chat answers in
     under 1 s (worst of several);
  2. a non-streaming request whose client closes the connection stops consuming CPU within 1 s
     (server utime+stime from /proc/PID/stat), and so do eight abandoned max_tokens-1000 requests;
  3. RSS after 1,000 mixed requests (chats, completions, streams, abandoned streams, every kind of
     invalid request) is within 5% of RSS before them (after a warm-up).

Only the standard library. Every loop is bounded in count and time; the script stops its server.
Prints the figures; exits 1 when a target is missed.
Usage: tools/stress-server.py [--quick] [path/to/harp-run]   (--quick: ~30 s version for make test)"""
import json, os, re, socket, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = [a for a in sys.argv[1:] if not a.startswith("--")]
QUICK = "--quick" in sys.argv
BIN = args[0] if args else os.path.join(ROOT, ".build/release/harp-run")
MODEL = os.environ.get("MODEL", os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
failures = []


def log(message):
    print(f"stress-server: {message}", file=sys.stderr, flush=True)


def target(ok, message):
    log(("ok:   " if ok else "MISS: ") + message)
    if not ok:
        failures.append(message)


if not os.path.exists(MODEL):
    log(f"FAIL: {MODEL} is missing (tools/setup.sh fetches it)")
    sys.exit(1)

server = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "--parallel", "4", "-c", "2048"],
                          stderr=subprocess.PIPE, text=True)
banner = server.stderr.readline()
match = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
if not match:
    log(f"FAIL: no listening line from the server: {banner!r}")
    server.kill()
    sys.exit(1)
PORT = int(match.group(1))


def cpu_seconds():
    with open(f"/proc/{server.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes():
    with open(f"/proc/{server.pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def request(method, path, body=None, timeout=60, raw_body=None):
    """One request on its own connection: (status, parsed JSON or raw bytes, seconds)."""
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
    started = time.time()
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        s.sendall(head.encode() + data)
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    finally:
        s.close()
    elapsed = time.time() - started
    head, _, payload = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    try:
        payload = json.loads(payload)
    except ValueError:
        pass
    return status, payload, elapsed


def chat(content, max_tokens=4, **extra):
    return request("POST", "/v1/chat/completions",
                   dict(messages=[{"role": "user", "content": content}], max_tokens=max_tokens, temperature=0, **extra))


def abandon(body, after):
    """Sends a request and closes the connection `after` seconds later without reading the answer."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    time.sleep(after)
    s.close()


def seconds_until_idle(limit):
    """Seconds until the server uses less than 5% of a core over a 0.1 s window (None: not within `limit`)."""
    started = time.time()
    previous = cpu_seconds()
    while time.time() - started < limit:
        time.sleep(0.1)
        now = cpu_seconds()
        if now - previous < 0.005:
            return time.time() - started - 0.1
        previous = now
    return None


try:
    status, _, _ = request("GET", "/health")
    if status != 200:
        raise SystemExit(f"stress-server: FAIL: /health gave {status}")
    for _ in range(3):
        chat("Hi")
    idle = sorted(chat("Hi")[2] for _ in range(5))
    log(f"idle server: 4-token chat {idle[len(idle) // 2] * 1000:.0f} ms (median of 5), worst {idle[-1] * 1000:.0f} ms")

    # 1. Long stop strings and slow sockets, then a normal chat.
    duration = 8 if QUICK else 20
    stop_flag = threading.Event()
    counts = {"long_stop_400": 0, "long_stop_other": 0, "max_stops_200": 0, "max_stops_other": 0, "slow_408": 0, "slow_reopened": 0}
    lock = threading.Lock()

    def count(key):
        with lock:
            counts[key] += 1

    def long_stop_client():
        deadline = time.time() + duration
        while not stop_flag.is_set() and time.time() < deadline:
            status, _, _ = chat("Tell me a story.", max_tokens=8, stop=["x" * 40000])
            count("long_stop_400" if status == 400 else "long_stop_other")
            time.sleep(0.02)  # <= 50 requests/s each: the client shares this machine's cores with the server

    def max_stops_client(seed):
        deadline = time.time() + duration
        # 16 stop strings of 1,024 bytes that share long prefixes with each other (the worst case
        # for a naive matcher) and never occur.
        stops = [("ab" * 511) + chr(0x41 + i) * 2 for i in range(16)]
        while not stop_flag.is_set() and time.time() < deadline:
            status, _, _ = chat(f"Count to {seed}.", max_tokens=16, stop=stops)
            count("max_stops_200" if status == 200 else "max_stops_other")

    def slow_sockets():
        partial = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
        sockets = [[socket.create_connection(("127.0.0.1", PORT)), 0] for _ in range(64)]
        deadline = time.time() + duration + 2
        while not stop_flag.is_set() and time.time() < deadline:
            for entry in sockets:
                try:
                    entry[0].send(partial[entry[1] % len(partial):][:1])
                    entry[1] += 1
                except OSError:  # answered 408 and closed: open another
                    count("slow_408")
                    entry[0].close()
                    entry[0], entry[1] = socket.create_connection(("127.0.0.1", PORT)), 0
                    count("slow_reopened")
            stop_flag.wait(1.0)
        for entry in sockets:
            entry[0].close()

    threads = [threading.Thread(target=slow_sockets)]
    threads += [threading.Thread(target=long_stop_client) for _ in range(2)]
    threads += [threading.Thread(target=max_stops_client, args=(i + 3,)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(2)
    latencies, statuses = [], []
    measure_until = time.time() + duration - 3
    while time.time() < measure_until and len(latencies) < 20:
        status, reply, elapsed = chat("Hi")
        statuses.append(status)
        latencies.append(elapsed)
        time.sleep(0.3)
    stop_flag.set()
    for t in threads:
        t.join(timeout=30)
    worst = max(latencies)
    log(f"under attack ({duration} s): {counts}")
    # --quick runs inside make test, possibly on a loaded machine: there the bound is also met by
    # staying within 4x the idle server's worst latency.
    bound = max(1.0, 4 * idle[-1]) if QUICK else 1.0
    target(all(s == 200 for s in statuses) and worst < bound,
           f"4-token chat during 40k stops + 16x1024-byte stops + 64 slow sockets: worst {worst * 1000:.0f} ms, "
           f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms over {len(latencies)} chats, statuses {sorted(set(statuses))} (target < {bound * 1000:.0f} ms, all 200)")
    target(counts["long_stop_other"] == 0 and counts["long_stop_400"] > 0, "40k-character stop strings answered 400")
    target(counts["max_stops_other"] == 0 and counts["max_stops_200"] > 0, "16 stop strings of 1,024 bytes accepted")

    # 2. Abandoned non-streaming requests stop using CPU.
    seconds_until_idle(5)
    abandon(dict(messages=[{"role": "user", "content": "Write a very long story about dragons."}], max_tokens=1000), after=1.5)
    closed = seconds_until_idle(5)
    target(closed is not None and closed < 1.0, f"one closed non-streaming request: server idle {closed if closed is None else f'{closed:.2f} s'} after the close (target < 1 s)")
    ts = [threading.Thread(target=abandon, args=(dict(messages=[{"role": "user", "content": f"Write a long story number {i}."}],
                                                      max_tokens=1000), 1.5)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    eight = seconds_until_idle(5)
    _, _, after = chat("Hi")
    target(eight is not None and eight < 1.0 and after < bound,
           f"eight closed max_tokens-1000 requests: idle {eight if eight is None else f'{eight:.2f} s'} after (target < 1 s), "
           f"next 4-token chat {after * 1000:.0f} ms (target < {bound * 1000:.0f} ms)")

    # 3. RSS over mixed requests.
    total = 200 if QUICK else 1000
    bad = [
        b'{"messages": [', b'{"messages": []}', b'{"messages": [{"role": "user", "content": "a\xffb"}]}',
        b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": -1}',
        b'{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4.5}', b'[' * 100000,
        json.dumps({"messages": [{"role": "user", "content": "Hi"}], "stop": ["s"] * 17}).encode(),
    ]

    def mixed(i):
        kind = i % 10
        if kind in (0, 1):
            chat(f"Say {i}.", max_tokens=2)
        elif kind == 2:
            request("POST", "/v1/completions", dict(prompt=f"Number {i} is", max_tokens=2, stop=["\n", " is"]))
        elif kind == 3:
            request("POST", "/v1/chat/completions", dict(messages=[{"role": "user", "content": "Hi"}], max_tokens=2, stream=True))
        elif kind == 4:
            abandon(dict(messages=[{"role": "user", "content": f"Story {i}"}], max_tokens=50, stream=i % 20 == 4), after=0.05)
        elif kind == 5:
            request("GET", "/v1/models")
        else:
            request("POST", "/v1/chat/completions", raw_body=bad[i % len(bad)])

    for i in range(50):
        mixed(i)
    seconds_until_idle(5)
    before = rss_bytes()
    started = time.time()
    done = 0
    budget = 60 if QUICK else 300
    while done < total and time.time() - started < budget:
        batch = [threading.Thread(target=mixed, args=(done + k,)) for k in range(min(8, total - done))]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        done += len(batch)
    seconds_until_idle(5)
    after_rss = rss_bytes()
    change = (after_rss - before) / before * 100
    target(done == total and abs(change) <= 5.0,
           f"RSS after {done} mixed requests ({time.time() - started:.0f} s): {before / 2**20:.1f} MiB -> {after_rss / 2**20:.1f} MiB ({change:+.1f}%, target within 5%)")
    target(server.poll() is None and request("GET", "/health")[0] == 200, "the server is still serving")
finally:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()

if failures:
    log(f"FAIL: {len(failures)} target(s) missed")
    sys.exit(1)
log("all targets met")
