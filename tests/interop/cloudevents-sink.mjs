// A CloudEvents sink for ballast's outbox interop test. Every request is parsed with the
// `cloudevents` SDK (HTTP.toEvent) and checked with event.validate(); each one is logged as a
// JSON line: {"n", "status", "valid", "error", "id", "source", "type", "time", "event"}.
// Answers: 401 when --token is given and the bearer token differs, 400 for an invalid event,
// 500 for a deterministic --fail-fraction of the valid ones (to prove retries), else 202.
//
// node cloudevents-sink.mjs --port-file F --log F [--port N] [--token T] [--fail-fraction X]
import { appendFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { HTTP } from "cloudevents";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
if (!args["port-file"] || !args.log) {
  console.error("usage: cloudevents-sink.mjs --port-file F --log F [--port N] [--token T] [--fail-fraction X]");
  process.exit(2);
}
const failFraction = Number(args["fail-fraction"] ?? 0);
let requests = 0;
let valid = 0;

function record(entry) {
  // Synchronous so the log is complete even when the test kills the sink right after a reply.
  appendFileSync(args.log, JSON.stringify(entry) + "\n");
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const n = ++requests;
    const body = Buffer.concat(chunks).toString("utf8");
    const entry = { n, method: req.method, url: req.url, contentType: req.headers["content-type"] ?? null };
    const reply = (status) => {
      entry.status = status;
      record(entry);
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(String(status));
    };
    if (args.token !== undefined && req.headers.authorization !== `Bearer ${args.token}`) {
      entry.valid = false;
      entry.error = "bad or missing bearer token";
      return reply(401);
    }
    try {
      const parsed = HTTP.toEvent({ headers: req.headers, body });
      const events = Array.isArray(parsed) ? parsed : [parsed];
      if (events.length !== 1) throw new Error(`expected one event, got ${events.length}`);
      const event = events[0];
      event.validate();
      // The SDK fills in a missing id or time by itself, so the sender's own attributes are
      // checked against the raw body too.
      const raw = JSON.parse(body);
      for (const key of ["specversion", "id", "source", "type", "time"]) {
        if (typeof raw[key] !== "string" || raw[key] === "" || raw[key] !== String(event[key]))
          throw new Error(`attribute '${key}' missing from the request or changed by parsing`);
      }
      entry.valid = true;
      entry.id = event.id;
      entry.source = event.source;
      entry.type = event.type;
      entry.time = event.time;
      entry.specversion = event.specversion;
      entry.event = event.toJSON();
    } catch (e) {
      entry.valid = false;
      entry.error = String(e && e.message ? e.message : e) + (e && e.errors ? " " + JSON.stringify(e.errors) : "");
      return reply(400);
    }
    // Fails `failFraction` of the valid events, spread evenly: the k-th fails when the running
    // quota floor(k * f) grows.
    const k = ++valid;
    if (Math.floor(k * failFraction) > Math.floor((k - 1) * failFraction)) return reply(500);
    return reply(202);
  });
});

server.listen(Number(args.port ?? 0), "127.0.0.1", () => {
  const tmp = args["port-file"] + ".tmp";
  writeFileSync(tmp, String(server.address().port));
  renameSync(tmp, args["port-file"]);
});
process.on("SIGTERM", () => process.exit(0));
