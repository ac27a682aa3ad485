// A CloudEvents sink for ballast's outbox interop test. Every request is parsed with the
// `cloudevents` SDK (HTTP.toEvent) and checked with event.validate(); each one is logged as a
// JSON line: {"n", "status", "valid", "error", "id", "source", "type", "time", "event"}.
// Answers: 401 when --token is given and the bearer token differs (or --aeg-sas-key and the
// aeg-sas-key header), 400 for an invalid event, 500 for a deterministic --fail-fraction of the
// valid ones (to prove retries), else 202.
// --batch: requests are CloudEvents batches (application/cloudevents-batch+json), each element
// validated, logged with "ids" and "events"; --statuses 500,500: the first valid requests' answers;
// --max-batch N: a batch of more than N events is answered 413, as Event Grid answers one too large.
//
// node cloudevents-sink.mjs --port-file F --log F [--port N] [--token T] [--aeg-sas-key K]
//                           [--fail-fraction X] [--batch 1] [--statuses S,S] [--max-batch N]
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
const statuses = args.statuses ? args.statuses.split(",").map(Number) : [];
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
    if (args["aeg-sas-key"] !== undefined && req.headers["aeg-sas-key"] !== args["aeg-sas-key"]) {
      entry.valid = false;
      entry.error = "bad or missing aeg-sas-key";
      return reply(401);
    }
    try {
      const parsed = HTTP.toEvent({ headers: req.headers, body });
      const events = Array.isArray(parsed) ? parsed : [parsed];
      const raws = args.batch ? JSON.parse(body) : [JSON.parse(body)];
      if (args.batch && (!Array.isArray(parsed) || !Array.isArray(raws) || events.length === 0))
        throw new Error("expected a batch (a JSON array of events)");
      if (!args.batch && events.length !== 1) throw new Error(`expected one event, got ${events.length}`);
      events.forEach((event, i) => {
        event.validate();
        // The SDK fills in a missing id or time by itself, so the sender's own attributes are
        // checked against the raw body too.
        for (const key of ["specversion", "id", "source", "type", "time"]) {
          if (typeof raws[i][key] !== "string" || raws[i][key] === "" || raws[i][key] !== String(event[key]))
            throw new Error(`attribute '${key}' missing from the request or changed by parsing`);
        }
      });
      entry.valid = true;
      if (args.batch) {
        entry.ids = events.map((e) => e.id);
        entry.events = events.map((e) => e.toJSON());
        if (statuses.length > 0) return reply(statuses.shift());
        if (args["max-batch"] !== undefined && events.length > Number(args["max-batch"])) return reply(413);
        return reply(202);
      }
      const event = events[0];
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
