#!/usr/bin/env python3
"""Drives `harp-run serve` with the official `openai` client (installed with pip when missing):
non-streaming and streaming chat completions, text completions, 8 concurrent clients, and the
error answers (malformed JSON 400, unknown model 404, oversized body 413, unknown path 404),
checking after each error that the server keeps serving, and issue 13's HTTP reproducers
(field-named 400s, conflicting Content-Length, LF-only heads, 100 Continue, stop strings). Only 127.0.0.1; bounded in time.
Usage: tools/test-server.py [path/to/harp-run]"""
import concurrent.futures, http.client, json, os, re, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/harp-run")
MODEL = os.environ.get("MODEL", os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))

try:
    import openai
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "openai"])
    import openai

def fail(message):
    print(f"test-server: FAIL: {message}", file=sys.stderr)
    sys.exit(1)

def check(condition, message):
    if not condition:
        fail(message)

if not os.path.exists(MODEL):
    print(f"test-server: {MODEL} missing, skipped", file=sys.stderr)
    sys.exit(0)

server = subprocess.Popen([BIN, "serve", "-m", MODEL, "--port", "0", "--parallel", "8", "-c", "1024"],
                          stderr=subprocess.PIPE, text=True)
try:
    banner = server.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
    check(match is not None, f"no listening line from the server: {banner!r}")
    port = int(match.group(1))
    base = f"http://127.0.0.1:{port}"
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", timeout=60, max_retries=0)

    def raw(method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, data

    def still_serving(after):
        status, body = raw("GET", "/health")
        check(status == 200 and json.loads(body)["status"] == "ok", f"/health failed after {after}")
        reply = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        check(reply.choices[0].message.content is not None, f"no completion after {after}")

    models = client.models.list().data
    check(len(models) == 1, f"expected one model, got {models}")
    model_id = models[0].id

    question = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]
    reply = client.chat.completions.create(model=model_id, messages=question, max_tokens=24, temperature=0)
    choice = reply.choices[0]
    check(choice.message.role == "assistant" and choice.message.content, f"empty chat completion: {reply}")
    check(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason}")
    check(reply.usage.completion_tokens <= 24 and reply.usage.prompt_tokens > 10, f"usage {reply.usage}")
    check(reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens, "usage totals")

    pieces, finish = [], None
    for chunk in client.chat.completions.create(model=model_id, messages=question, max_tokens=24, temperature=0, stream=True):
        delta = chunk.choices[0].delta
        pieces.append(delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
    check(len([p for p in pieces if p]) > 1, f"streaming delivered {pieces}")
    check(finish in ("stop", "length"), f"streaming finish_reason {finish}")

    text = client.completions.create(model=model_id, prompt="The capital of France is", max_tokens=8, temperature=0, stop=["\n"])
    check(text.choices[0].text and "\n" not in text.choices[0].text, f"text completion {text}")
    print("test-server: chat, streaming chat and text completions ok", file=sys.stderr)

    def ask(i):
        started = time.time()
        r = client.chat.completions.create(model=model_id, max_tokens=32, temperature=0.7, seed=i,
                                           messages=[{"role": "user", "content": f"Tell me a fact about the number {i + 2}."}])
        return r.usage.completion_tokens, time.time() - started, r.choices[0].message.content
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(ask, range(8)))
    elapsed = time.time() - started
    check(all(content for _, _, content in results), "a concurrent client got no text")
    tokens = sum(n for n, _, _ in results)
    print(f"test-server: 8 concurrent clients ok: {tokens} tokens in {elapsed:.1f} s ({tokens / elapsed:.1f} t/s together)", file=sys.stderr)

    status, body = raw("POST", "/v1/chat/completions", b'{"model": "x", "messages": [', {"Content-Type": "application/json"})
    check(status == 400 and "error" in json.loads(body), f"malformed JSON gave {status} {body[:200]!r}")
    still_serving("malformed JSON")
    try:
        client.chat.completions.create(model="no-such-model", messages=question, max_tokens=4)
        fail("unknown model was accepted")
    except openai.NotFoundError:
        pass
    still_serving("unknown model")
    status, body = raw("POST", "/v1/chat/completions", b"x" * (2 << 20), {"Content-Type": "application/json"})
    check(status == 413, f"2 MiB body gave {status}")
    still_serving("oversized body")
    status, _ = raw("GET", "/v1/nothing-here")
    check(status == 404, f"unknown path gave {status}")
    try:
        client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "word " * 3000}], max_tokens=4)
        fail("a prompt longer than the context was accepted")
    except openai.BadRequestError:
        pass
    still_serving("errors")

    # Hostile-input reproducers of issue 13 at the HTTP level (the Swift tests cover each in-process too).
    def raw_bytes(data, timeout=15):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        return out
    hi = [{"role": "user", "content": "Hi"}]
    for body, field in [({"messages": hi, "temperature": -1}, "temperature"), ({"messages": hi, "max_tokens": 4.5}, "max_tokens"),
                        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
                        ({"messages": hi, "stop": "x" * 40000}, "stop[0]")]:
        status, data = raw("POST", "/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
        check(status == 400 and field in json.loads(data)["error"]["message"], f"{field}: {status} {data[:200]!r}")
    status, data = raw("POST", "/v1/completions", b'{"prompt": ""}', {"Content-Type": "application/json"})
    check(status == 400 and "prompt" in json.loads(data)["error"]["message"], f"empty prompt: {status} {data!r}")
    status, data = raw("POST", "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "a\xffb"}]}', {})
    check(status == 400 and "UTF-8" in json.loads(data)["error"]["message"], f"invalid UTF-8: {status} {data!r}")
    answer = raw_bytes(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}")
    check(answer.startswith(b"HTTP/1.1 400"), f"conflicting Content-Length: {answer[:100]!r}")
    body = b'{"prompt": "Hello", "max_tokens": 2}'
    answer = raw_bytes(b"POST /v1/completions HTTP/1.1\nContent-Length: %d\n\n" % len(body) + body)
    check(answer.startswith(b"HTTP/1.1 200"), f"LF-only head: {answer[:100]!r}")
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    check(s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n", "no 100 Continue")
    s.sendall(body)
    check(s.recv(100).startswith(b"HTTP/1.1 200"), "no answer after 100 Continue")
    s.close()
    text = client.completions.create(model=model_id, prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=[" 6", "7"])
    check(text.choices[0].finish_reason == "stop" and " 6" not in text.choices[0].text, f"stop strings: {text}")
    print("test-server: hostile-input reproducers ok", file=sys.stderr)
    check(server.poll() is None, "the server exited")
    print("test-server: ok", file=sys.stderr)
finally:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
