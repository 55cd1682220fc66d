#!/usr/bin/python3
"""Deletions through `lethe serve` under a prediction load
(docs/RELIABILITY.md): for N single-id deletions, one after another while
LOAD connections predict in a loop,
  - the time from request to acknowledgement, as the server measures it
    (ack_us: parsing, the ledger record and its fsync, and taking the
    affected components out) and as the client sees it (round trip);
  - the time from the acknowledgement to the first answer that no longer
    uses a component the deletion cut (S3T: the surviving prefix serves);
  - SISA: the time until the request is applied (the retrain).

usage: serve_deletions.py LETHE RUN IDS_FILE N [LOAD]"""
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

LETHE, RUN, IDS_FILE, N = sys.argv[1:5]
N, LOAD = int(N), int(sys.argv[5]) if len(sys.argv) > 5 else 4
ids = [int(x) for x in open(IDS_FILE).read().split()][:N]
work = tempfile.mkdtemp()
token = os.path.join(work, "token")
open(token, "w").write("t\n")
out = open(os.path.join(work, "out"), "w+")
p = subprocess.Popen([LETHE, "serve", "--run", RUN, "--port", "0", "--token-file", token,
                      "--threads", "2"], stdout=out, stderr=subprocess.DEVNULL)
port = None
for _ in range(600):
    out.seek(0)
    s = out.read()
    if "listening on" in s:
        port = int(s.strip().rsplit(":", 1)[1])
        break
    time.sleep(0.05)
H = {"Authorization": "Bearer t", "Content-Type": "application/json"}


def req(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=H)
    r = c.getresponse()
    j = json.loads(r.read() or b"null")
    c.close()
    return r.status, j


kind = req("GET", "/v1/models")[1]["data"][0]["kind"]
width = req("GET", "/v1/models")[1]["data"][0]["features"]
rows = json.dumps({"inputs": [[(i * 7) % 17 for i in range(width)]]})
stop = threading.Event()
served = [0]


def load():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        c.request("POST", "/v1/predict", body=rows, headers=H)
        c.getresponse().read()
        served[0] += 1


threads = [threading.Thread(target=load) for _ in range(LOAD)]
for t in threads:
    t.start()
ack_server, ack_client, to_served, to_applied, changed = [], [], [], [], 0
for i in ids:
    before = set(req("POST", "/v1/predict", rows)[1].get("components", []))
    t0 = time.perf_counter()
    st, j = req("POST", "/v1/deletions", json.dumps({"ids": [i]}))
    t1 = time.perf_counter()
    if st != 202:
        print("deletion of %d: %d %s" % (i, st, j))
        continue
    ack_server.append(j["ack_us"] / 1000)
    ack_client.append((t1 - t0) * 1000)
    st2, k = req("POST", "/v1/predict", rows)
    t2 = time.perf_counter()
    after = set(k.get("components", [])) if st2 == 200 else set()
    if after != before:
        changed += 1
        to_served.append((t2 - t1) * 1000)
    if kind == "sisa":
        while req("GET", "/v1/deletions/%d" % j["id"])[1]["status"] != "applied":
            time.sleep(0.002)
        to_applied.append((time.perf_counter() - t1) * 1000)
stop.set()
for t in threads:
    t.join()
p.send_signal(signal.SIGTERM)
p.wait()


def q(v, f):
    v = sorted(v)
    return v[min(len(v) - 1, int(f * len(v)))] if v else float("nan")


print("%s: %d deletions under %d predicting connections (%d predictions)" %
      (kind, len(ack_server), LOAD, served[0]))
print("  acknowledgement, server (ack_us): median %.2f ms, p99 %.2f ms, max %.2f ms" %
      (statistics.median(ack_server), q(ack_server, 0.99), max(ack_server)))
print("  acknowledgement, client round trip: median %.2f ms, p99 %.2f ms" %
      (statistics.median(ack_client), q(ack_client, 0.99)))
print("  %d deletions changed the components; the first answer after the 202 came "
      "%.2f ms (median), %.2f ms (max) after it" %
      (changed, statistics.median(to_served) if to_served else float("nan"),
       max(to_served) if to_served else float("nan")))
if to_applied:
    print("  applied (retrained) after: median %.0f ms, p99 %.0f ms" %
          (statistics.median(to_applied), q(to_applied, 0.99)))
