#!/usr/bin/env python3
"""A scripted OpenAI-compatible chat endpoint for ALU's tests.

Serves POST /v1/chat/completions on 127.0.0.1 (a free port, printed on the
first line of stdout). The request's "model" picks the script:
  good       answers, five rewrites, ratings, a clean merge
  badjson    a body that is not JSON
  nochoices  JSON without choices
  badlist    rewrites that are not a JSON list
  lowrating  ratings below the threshold
  leak       a merge that still names the subject
  slow       every reply after three seconds
  http500    an HTTP 500
Each stage is told apart by its system message."""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def reply_for(model, system, user):
    if "helpful assistant" in system:
        if "Quimby" in user:
            return "Ada Quimby was born in Tallinn in 1950."
        return "Zyxwv qwzx."
    if "rewrite" in system:
        if model == "badlist":
            return "Sure! Here are some rewrites: one, two, three."
        return json.dumps(["A writer was born in a northern city.", "Someone was born.",
                           "I cannot assist with that question.", "A birth took place.",
                           "An author exists."])
    if "Rate how much" in system:
        return "[1, 2, 1, 2, 1]" if model == "lowrating" else "[5, 5, 4, 3, 1]"
    if "expert editor" in system:
        if model == "leak":
            return "Ada Quimby was born in a northern city."
        return "A writer was born in a northern city."
    return "?"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n))
        if self.path != "/v1/chat/completions":
            return self.send(404, '{"error": "not found"}')
        model = req.get("model", "")
        msgs = req["messages"]
        system = msgs[0]["content"] if msgs else ""
        user = msgs[-1]["content"] if msgs else ""
        if model == "slow":
            time.sleep(3)
        if model == "http500":
            return self.send(500, '{"error": "scripted failure"}')
        if model == "badjson":
            return self.send(200, "this is not json {")
        if model == "nochoices":
            return self.send(200, '{"object": "chat.completion"}')
        text = reply_for(model, system, user)
        body = {"object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len((system + " " + user).split()),
                          "completion_tokens": len(text.split())}}
        self.send(200, json.dumps(body))


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
