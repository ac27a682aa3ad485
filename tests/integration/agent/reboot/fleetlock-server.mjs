// A FleetLock server for tests, following the protocol Zincati and airlock speak:
// POST /v1/pre-reboot takes one of the group's slots (a semaphore of --slots per group, holders
// by node id; the holder asking again is granted), POST /v1/steady-state gives it back. Every
// request needs the header "fleet-lock-protocol: true" and a body
// {"client_params":{"id":…,"group":…}}; errors are {"kind":…,"value":…} with 400, 404, 405 or
// 423 (group full). Listens on 127.0.0.1 on a free port and prints the port (and writes it to
// --port-file when given). node's http module only; with --tls-cert and --tls-key it speaks
// HTTPS (https module), and with --client-ca it also wants a client certificate signed by that CA.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const slots = Number(option('--slots', '1'));
const portFile = option('--port-file', null);
const tlsCert = option('--tls-cert', null);
const tlsKey = option('--tls-key', null);
const clientCa = option('--client-ca', null);
const groupPattern = /^[a-zA-Z0-9.-]+$/;
const holders = new Map();  // group → Set of node ids

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
const refuse = (res, status, kind, value) => reply(res, status, { kind, value });

function parseParams(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: 'the body is not JSON' };
  }
  const p = body && typeof body === 'object' ? body.client_params : undefined;
  if (!p || typeof p !== 'object') return { error: 'client_params missing' };
  if (typeof p.id !== 'string' || p.id.length === 0) return { error: 'client_params.id missing or empty' };
  if (typeof p.group !== 'string' || !groupPattern.test(p.group)) return { error: 'client_params.group invalid' };
  return { id: p.id, group: p.group };
}

function handler(req, res) {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > 64 * 1024) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    const endpoint = req.url === '/v1/pre-reboot' ? 'pre-reboot' : req.url === '/v1/steady-state' ? 'steady-state' : null;
    if (!endpoint) return refuse(res, 404, 'not_found', `no endpoint ${req.url}`);
    if (req.method !== 'POST') return refuse(res, 405, 'method_not_allowed', 'POST only');
    if (req.headers['fleet-lock-protocol'] !== 'true')
      return refuse(res, 400, 'missing_header', 'the fleet-lock-protocol header must be "true"');
    const params = parseParams(Buffer.concat(chunks).toString('utf8'));
    if (params.error) return refuse(res, 400, 'bad_client_params', params.error);
    const held = holders.get(params.group) ?? new Set();
    holders.set(params.group, held);
    if (endpoint === 'pre-reboot') {
      if (!held.has(params.id)) {
        if (held.size >= slots)
          return refuse(res, 423, 'failed_lock', `semaphore of group ${params.group} is full (held by ${[...held].join(', ')})`);
        held.add(params.id);
      }
      console.log(`lock ${params.group}/${params.id}`);
      return reply(res, 200, {});
    }
    held.delete(params.id);
    console.log(`unlock ${params.group}/${params.id}`);
    return reply(res, 200, {});
  });
}

const server = tlsCert
  ? https.createServer(
      {
        cert: fs.readFileSync(tlsCert),
        key: fs.readFileSync(tlsKey),
        ...(clientCa ? { ca: fs.readFileSync(clientCa), requestCert: true, rejectUnauthorized: true } : {}),
      },
      handler)
  : http.createServer(handler);

server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  console.log(port);
  if (portFile) {
    fs.writeFileSync(`${portFile}.tmp`, String(port));
    fs.renameSync(`${portFile}.tmp`, portFile);
  }
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
