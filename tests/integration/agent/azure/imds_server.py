#!/usr/bin/env python3
"""A stand-in for Azure's Instance Metadata Service on 127.0.0.1, following Microsoft's documented
requests and responses (there is no IMDS emulator to install):

  GET  /metadata/scheduledevents?api-version=2020-07-01   {"DocumentIncarnation": N, "Events": [...]}
  POST /metadata/scheduledevents?api-version=2020-07-01   {"StartRequests": [{"EventId": "..."}]}
       approves: the event starts (EventStatus "Started", NotBefore ""), the incarnation grows
  GET  /metadata/instance?api-version=2021-02-01          {"compute": {...}, "network": {...}}

Every request must carry "Metadata: true" and no X-Forwarded-For, or it gets 400, as IMDS does.
--state names a JSON file {"events": [...], "compute": {...}} re-read on every request, so a test
changes the platform's events by rewriting it; the server writes it back after an approval.
POST /events is a CloudEvents sink for the agent's reports. Every request is logged to --log as
one JSON line: method, path, metadata header, body, status.
"""
import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

args = None
lock = threading.Lock()
API_VERSIONS = {"/metadata/scheduledevents": "2020-07-01", "/metadata/instance": "2021-02-01"}


def load_state():
    with open(args.state) as f:
        state = json.load(f)
    state.setdefault("incarnation", 1)
    state.setdefault("events", [])
    return state


def save_state(state):
    tmp = args.state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, args.state)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, body_in=""):
        data = json.dumps(body).encode()
        # Logged before the answer goes out: a client that has its answer (the daemon that posted
        # its last CloudEvent and then rebooted) must never leave a test reading a log without it.
        with lock, open(args.log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "metadata": self.headers.get("Metadata"),
                                "body": body_in, "status": status}) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode() if n else ""

    def check(self, body_in):
        """The documented refusals; returns the path when the request may go on."""
        url = urlparse(self.path)
        if self.headers.get("Metadata") != "true":
            self.reply(400, {"error": "Bad request. Required metadata header not specified"}, body_in)
            return None
        if self.headers.get("X-Forwarded-For"):
            self.reply(400, {"error": "Bad request. X-Forwarded-For header is not allowed"}, body_in)
            return None
        want = API_VERSIONS.get(url.path)
        if want is None:
            self.reply(404, {"error": "Not found"}, body_in)
            return None
        if parse_qs(url.query).get("api-version") != [want]:
            self.reply(400, {"error": "Bad request. api-version is missing or not supported", "newest-versions": [want]}, body_in)
            return None
        return url.path

    def do_GET(self):
        path = self.check("")
        if path is None:
            return
        with lock:
            state = load_state()
        if path == "/metadata/scheduledevents":
            self.reply(200, {"DocumentIncarnation": state["incarnation"], "Events": state["events"]})
        else:
            self.reply(200, {"compute": state.get("compute", {}), "network": {"interface": []}})

    def do_POST(self):
        body_in = self.read_body()
        if urlparse(self.path).path == "/events":
            self.reply(200, {}, body_in)
            return
        path = self.check(body_in)
        if path is None:
            return
        if path != "/metadata/scheduledevents":
            self.reply(405, {"error": "Method not allowed"}, body_in)
            return
        try:
            ids = [r["EventId"] for r in json.loads(body_in)["StartRequests"]]
        except (ValueError, KeyError, TypeError):
            self.reply(400, {"error": "Bad request. StartRequests is malformed"}, body_in)
            return
        with lock:
            state = load_state()
            known = {e["EventId"]: e for e in state["events"]}
            if not ids or any(i not in known for i in ids):
                status = 400
            else:
                for i in ids:
                    known[i]["EventStatus"] = "Started"
                    known[i]["NotBefore"] = ""
                state["incarnation"] += 1
                save_state(state)
                status = 200
        self.reply(status, {} if status == 200 else {"error": "Bad request. Unknown EventId"}, body_in)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--state", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
