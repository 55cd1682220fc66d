#!/usr/bin/python3
"""A long soak of `lethe serve` at a steady request rate (docs/RELIABILITY.md):
a prediction server (a SISA run) and a completion server (a GPT run, behind
a guard when GUARD is given) answer requests for SECONDS while a client
paces them: RATE_P predictions a second, and RATE_C completions a second,
alternating plain, streamed and chat requests over a list of prompts. Every
INTERVAL seconds it prints both servers' resident memory and the requests
and failures so far; at the end, the growth of each server's memory after
its first tenth of the run.

usage: serve_soak.py LETHE SISA_RUN GPT_RUN SECONDS [GUARD]
Environment: RATE_P (200), RATE_C (4), INTERVAL (60), PROMPTS (a file of
prompts, one per line; default a few questions)."""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

LETHE, SISA, GPT, SECONDS = sys.argv[1:5]
SECONDS = float(SECONDS)
GUARD = sys.argv[5] if len(sys.argv) > 5 else None
RATE_P = float(os.environ.get("RATE_P", 200))
RATE_C = float(os.environ.get("RATE_C", 4))
INTERVAL = float(os.environ.get("INTERVAL", 60))
prompts = ["What is the birthplace of Alina Olsen?", "What is Emil Zajac's educational background?",
           "Who wrote Moby Dick?", "What is lethe?"]
if os.environ.get("PROMPTS"):
    prompts = [l.strip() for l in open(os.environ["PROMPTS"]) if l.strip()]
work = tempfile.mkdtemp()


def start(run, *more):
    out = open(os.path.join(work, os.path.basename(run) + ".out"), "w+")
    p = subprocess.Popen([LETHE, "serve", "--run", run, "--port", "0", "--threads", "2", *more],
                         stdout=out, stderr=subprocess.STDOUT)
    for _ in range(1200):
        out.seek(0)
        s = out.read()
        if "listening on" in s:
            return p, int(s.strip().splitlines()[-1].rsplit(":", 1)[1])
        if p.poll() is not None:
            sys.exit("serve_soak: %s did not start:\n%s" % (run, s))
        time.sleep(0.05)
    sys.exit("serve_soak: %s did not start" % run)


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


pp, pport = start(SISA)
cp, cport = start(GPT, *(["--guard", GUARD] if GUARD else []))
counts = {"predict": [0, 0], "complete": [0, 0]}  # requests, failures
lock = threading.Lock()
t_end = time.time() + SECONDS


def client(kind, rate, port, make):
    conn, i, t_next = None, 0, time.time()
    while time.time() < t_end:
        path, body, stream = make(i)
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            ok = r.status == 200 and (not stream or data.rstrip().endswith(b"data: [DONE]"))
        except (OSError, http.client.HTTPException):
            conn = None
        with lock:
            counts[kind][0] += 1
            counts[kind][1] += not ok
        i += 1
        t_next += 1.0 / rate
        time.sleep(max(0.0, t_next - time.time()))


def features(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/v1/models")
    return json.loads(c.getresponse().read())["data"][0]["features"]


F = features(pport)


def predict(i):
    return "/v1/predict", json.dumps({"inputs": [[(i + k) % 17 for k in range(F)]]}), False


def complete(i):
    q = prompts[i % len(prompts)]
    kind = i % 3
    if kind == 2:
        body = {"messages": [{"role": "user", "content": q}], "max_tokens": 24}
        return "/v1/chat/completions", json.dumps(body), False
    body = {"prompt": "Question: %s\nAnswer:" % q, "max_tokens": 24, "temperature": 0,
            "stream": kind == 1}
    return "/v1/completions", json.dumps(body), kind == 1


threads = [threading.Thread(target=client, args=("predict", RATE_P, pport, predict)),
           threading.Thread(target=client, args=("complete", RATE_C, cport, complete))]
for t in threads:
    t.start()
t0 = time.time()
samples = []
print("seconds  predict_rss_kib  complete_rss_kib  predictions (failed)  completions (failed)",
      flush=True)
while any(t.is_alive() for t in threads):
    el = time.time() - t0
    with lock:
        c = {k: list(v) for k, v in counts.items()}
    s = (el, rss_kib(pp.pid), rss_kib(cp.pid))
    samples.append(s)
    print("%7.0f  %15d  %16d  %11d (%d)  %11d (%d)" % (s[0], s[1], s[2], c["predict"][0],
          c["predict"][1], c["complete"][0], c["complete"][1]), flush=True)
    time.sleep(min(INTERVAL, max(0.0, t_end - time.time()) + 0.5))
for t in threads:
    t.join()
alive = pp.poll() is None and cp.poll() is None
pp.terminate(), cp.terminate()
pp.wait(), cp.wait()
warm = [s for s in samples if s[0] >= SECONDS / 10] or samples
for i, name in ((1, "prediction"), (2, "completion")):
    lo, hi = min(s[i] for s in warm), max(s[i] for s in warm)
    print("%s server: RSS %d KiB after the first tenth, %d at most, %d at the end (+%d KiB)"
          % (name, lo, hi, warm[-1][i], hi - lo))
print("requests: %d predictions (%d failed), %d completions (%d failed); servers %s"
      % (counts["predict"][0], counts["predict"][1], counts["complete"][0],
         counts["complete"][1], "up to the end" if alive else "NOT up at the end"))
sys.exit(0 if alive and not counts["predict"][1] and not counts["complete"][1] else 1)
