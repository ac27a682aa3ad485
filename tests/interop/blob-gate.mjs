// A gate in front of Azurite for the interrupted-push test: a plain-HTTP proxy on a loopback port
// that forwards every request to TARGET (Azurite's HTTPS origin, trusted through
// NODE_EXTRA_CA_CERTS) until it has forwarded LIMIT PUTs; later PUTs are held, never answered,
// and STATE_DIR/held is written, so the test can kill the pusher at a known point.
// GET /gate/puts answers the names of the PUTs forwarded, one a line.
//   node blob-gate.mjs STATE_DIR TARGET LIMIT
import { createServer } from "node:http";
import { request } from "node:https";
import { renameSync, writeFileSync } from "node:fs";

const [stateDir, target, limit] = process.argv.slice(2);
const puts = [];

const server = createServer((req, res) => {
  if (req.url === "/gate/puts") return res.end(puts.join("\n"));
  if (req.method === "PUT") {
    if (puts.length >= Number(limit)) {
      writeFileSync(`${stateDir}/held`, req.url.split("?")[0]);
      return;  // held: the pusher waits here until it is killed
    }
    puts.push(req.url.split("?")[0]);
  }
  const upstream = request(new URL(req.url, target), { method: req.method, headers: req.headers }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  upstream.on("error", (e) => {
    res.statusCode = 502;
    res.end(String(e));
  });
  req.pipe(upstream);
});
// Written by rename, so a reader never sees a half-written port.
server.listen(0, "127.0.0.1", () => {
  writeFileSync(`${stateDir}/port.tmp`, String(server.address().port));
  renameSync(`${stateDir}/port.tmp`, `${stateDir}/port`);
});
