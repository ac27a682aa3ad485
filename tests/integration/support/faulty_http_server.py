#!/usr/bin/env python3
"""A static HTTP/1.1 server on 127.0.0.1 that misbehaves on request, for fetcher tests.

--rules names a JSON file, re-read on every request: {"<file name or *>": ["action", ...]}.
The n-th request for a file takes the n-th action (then "ok"):
  ok               serve it (honouring Range)
  drop:N           promise the whole body, send N bytes, close the connection
  stall:N          send N bytes, then stay silent for 20 s
  corrupt          serve it with one byte flipped
  status:CODE[:RA] answer CODE, with Retry-After: RA when given
  short:N          a complete 200 response carrying only the first N bytes
  ignore-range     answer a Range request with 200 and the whole file
  extra:N          serve the file followed by N more bytes
Every request is logged to --log as one JSON line: path, range, action, status, bytes sent, time.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = None
counts = {}
lock = threading.Lock()


def next_action(name):
    try:
        with open(args.rules) as f:
            rules = json.load(f)
    except (OSError, ValueError):
        rules = {}
    with lock:
        n = counts.get(name, 0)
        counts[name] = n + 1
    actions = rules.get(name, rules.get("*", []))
    return actions[n] if n < len(actions) else "ok"


def log(entry):
    entry["time"] = time.time()
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_bytes(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return len(data)
        except (BrokenPipeError, ConnectionResetError):
            return 0

    def do_GET(self):
        rel = self.path.split("?")[0].lstrip("/")
        path = os.path.realpath(os.path.join(args.root, rel))
        name = os.path.basename(path)
        rng = self.headers.get("Range")
        entry = {"path": rel, "name": name, "range": rng}
        if not path.startswith(os.path.realpath(args.root) + os.sep) or not os.path.isfile(path):
            entry.update(action="-", status=404, bytes=0)
            log(entry)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(path, "rb") as f:
            data = f.read()
        action = next_action(name)
        entry["action"] = action
        kind, _, arg = action.partition(":")
        start = 0
        if rng and rng.startswith("bytes=") and kind != "ignore-range":
            a, _, b = rng[6:].partition("-")
            start = int(a)
            end = int(b) if b else len(data) - 1
            body = data[start:end + 1]
            status = 206
        else:
            body = data
            status = 200
        if kind == "status":
            code, _, ra = arg.partition(":")
            self.send_response(int(code))
            if ra:
                self.send_header("Retry-After", ra)
            msg = b"unavailable"
            self.send_header("Content-Length", str(len(msg)))
            entry.update(status=int(code), bytes=0)
            log(entry)
            self.end_headers()
            self.send_bytes(msg)
            return
        if kind == "corrupt":
            body = bytearray(body)
            body[len(body) // 2] ^= 0x5A
            body = bytes(body)
        if kind == "short":
            body = body[:int(arg)]
        if kind == "extra":
            body = body + b"\0" * int(arg)
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, start + len(body) - 1, len(data)))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        # Logged before the body goes out, so a client that has read the response never sees a
        # log that lacks it (tests read the log as soon as the fetch returns).
        if kind in ("drop", "stall"):
            payload = body[:int(arg)]
        else:
            payload = body
        entry.update(status=status, bytes=len(payload))
        log(entry)
        self.send_bytes(payload)
        if kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        elif kind == "stall":
            time.sleep(20)
            self.close_connection = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--rules", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # clients hanging up is the point
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
