// A Kubernetes API server for Nodes only, following the protocol the agent, kubectl and
// @kubernetes/client-node speak: discovery (/api, /apis, /api/v1), Node GET, list
// (fieldSelector=metadata.name=…) and watch (?watch=1&resourceVersion=…&allowWatchBookmarks=true,
// chunked JSON lines, BOOKMARK events, ERROR 410 for a compacted resourceVersion, timeoutSeconds),
// PATCH as JSON merge patch (also strategic merge patch, the same for annotations) and JSON patch,
// with 409 when the patch names a stale metadata.resourceVersion; 401 without a known client
// certificate or bearer token, 403 when a node's identity patches another Node (the Node
// authorizer). Its state (nodes, resourceVersion, history) lives in --state-file, so a test can
// stop it and start it again on the same port as an API server that was away.
//   node kube-apiserver.mjs --port-file F --state-file S [--port P] [--node NAME]...
//     [--tls-cert C --tls-key K [--client-ca CA --cn-user "CN=user"]...] [--token "TOKEN=user"]...
//     [--bookmark-ms 500]
// POST /admin/compact (no auth, loopback tests only) makes every resourceVersion older than the
// newest too old; open watches get ERROR 410 and end. With ?as=http they end without an event, the
// resourceVersion moves on, and a watch from a compacted one is answered HTTP 410 Gone itself (as an
// API server does for a resourceVersion its watch cache no longer has). POST
// /admin/gone-watches?count=N answers the next N watches of a node from a resourceVersion that is
// not compacted with HTTP 410 Gone too. GET /admin/stats counts the lists and watches served and
// names the requests of nodes (and the unauthorized ones) in order: list, watch, watch 410, patch, 401.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const all = (name) => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []));
const pairs = (name) => new Map(all(name).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
const tokens = pairs('--token');
const cnUsers = pairs('--cn-user');
const stateFile = opt('--state-file');
const bookmarkMs = Number(opt('--bookmark-ms') ?? 500);

let state = { rv: 1, compacted: 0, nodes: {}, history: [] };
if (stateFile && fs.existsSync(stateFile)) state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
for (const name of all('--node')) {
  if (!state.nodes[name]) {
    state.rv += 1;
    state.nodes[name] = { kind: 'Node', apiVersion: 'v1',
      metadata: { name, uid: `uid-${name}`, resourceVersion: String(state.rv), annotations: {}, labels: { 'kubernetes.io/hostname': name } },
      spec: {}, status: { conditions: [] } };
  }
}
const save = () => { if (stateFile) fs.writeFileSync(stateFile + '.tmp', JSON.stringify(state)), fs.renameSync(stateFile + '.tmp', stateFile); };
save();

const watchers = new Set();
const stats = { lists: 0, watches: 0, requests: [] };
let goneWatches = 0;
const isNode = (who) => who?.startsWith('system:node:');
// The requests of nodes (and the refused ones), not of the test's controllers.
const record = (who, what) => { if (!who || isNode(who)) stats.requests.push(what); };

function status(res, code, reason, message) {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}
function json(res, body) {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function user(req) {
  const auth = req.headers.authorization ?? '';
  if (auth.startsWith('Bearer ')) return tokens.get(auth.slice(7));
  const sock = req.socket;
  if (sock.authorized && sock.getPeerCertificate) return cnUsers.get(sock.getPeerCertificate().subject?.CN);
  return undefined;
}

function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function jsonPatch(doc, ops) {
  const out = structuredClone(doc);
  for (const op of ops) {
    const path = op.path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    let parent = out;
    for (const p of path.slice(0, -1)) parent = parent[p] ??= {};
    const last = path[path.length - 1];
    if (op.op === 'add' || op.op === 'replace') parent[last] = op.value;
    else if (op.op === 'remove') delete parent[last];
    else if (op.op === 'test') { if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new Error('test failed'); }
    else throw new Error(`unsupported op ${op.op}`);
  }
  return out;
}

function changed(type, node) {
  state.history.push({ rv: Number(node.metadata.resourceVersion), type, node });
  if (state.history.length > 1000) state.history.shift();
  save();
  for (const w of watchers) w.send(type, node);
}

function selectorName(url) {
  const sel = url.searchParams.get('fieldSelector');
  if (!sel) return undefined;
  const m = /^metadata\.name=(.+)$/.exec(sel);
  return m ? m[1] : null;
}

function watch(req, res, url, who) {
  const name = selectorName(url);
  const from = Number(url.searchParams.get('resourceVersion') || state.rv);
  const compacted = from < state.compacted && state.goneAsHttp;
  if (compacted || (goneWatches > 0 && isNode(who))) {
    if (!compacted) goneWatches -= 1;
    record(who, 'watch 410');
    return status(res, 410, 'Expired', `too old resource version: ${from} (${state.compacted})`);
  }
  record(who, 'watch');
  const bookmarks = url.searchParams.get('allowWatchBookmarks') === 'true';
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  const w = {
    send(type, node) {
      if (name && node.metadata.name !== name) return;
      res.write(JSON.stringify({ type, object: node }) + '\n');
    },
    gone() {
      res.write(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
        message: `too old resource version: ${from} (${state.compacted})`, reason: 'Expired', code: 410 } }) + '\n');
      end();
    },
    close() { end(); },
  };
  const timers = [];
  const end = () => { watchers.delete(w); timers.forEach(clearInterval); timers.forEach(clearTimeout); res.end(); };
  if (from < state.compacted) return w.gone();
  for (const h of state.history) if (h.rv > from) w.send(h.type, h.node);
  watchers.add(w);
  if (bookmarks) timers.push(setInterval(() => res.write(JSON.stringify({ type: 'BOOKMARK',
    object: { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(state.rv) } } }) + '\n'), bookmarkMs));
  const timeout = Number(url.searchParams.get('timeoutSeconds') || 0);
  if (timeout > 0) timers.push(setTimeout(end, timeout * 1000));
  req.on('close', end);
}

const discovery = {
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] },
  '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [] },
  '/api/v1': { kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'nodes', singularName: 'node', namespaced: false,
    kind: 'Node', verbs: ['get', 'list', 'watch', 'patch'], shortNames: ['no'] }] },
  '/version': { major: '1', minor: '30', gitVersion: 'v1.30.0-ballast-test' },
};

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const body = await new Promise((resolve) => { let b = ''; req.on('data', (c) => (b += c)); req.on('end', () => resolve(b)); });
  if (req.method === 'GET' && url.pathname === '/admin/stats') return json(res, stats);
  if (req.method === 'POST' && url.pathname === '/admin/compact') {
    state.goneAsHttp = url.searchParams.get('as') === 'http';
    // Other objects changed meanwhile: what a watcher saw last is older than the newest.
    if (state.goneAsHttp) state.rv += 1;
    state.compacted = state.rv;  // a list's resourceVersion (the newest) can still be watched
    save();
    for (const w of [...watchers]) (state.goneAsHttp ? w.close() : w.gone());
    return json(res, { compacted: state.compacted });
  }
  if (req.method === 'POST' && url.pathname === '/admin/gone-watches') {
    goneWatches = Number(url.searchParams.get('count') ?? 1);
    return json(res, { goneWatches });
  }
  const who = user(req);
  if (!who) {
    record(who, '401');
    return status(res, 401, 'Unauthorized', 'Unauthorized');
  }
  if (req.method === 'GET' && discovery[url.pathname]) return json(res, discovery[url.pathname]);
  if (req.method === 'GET' && url.pathname === '/api/v1/nodes') {
    if (url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true') {
      stats.watches += 1;
      return watch(req, res, url, who);
    }
    stats.lists += 1;
    record(who, 'list');
    const name = selectorName(url);
    if (name === null) return status(res, 400, 'BadRequest', 'only fieldSelector=metadata.name=… is supported');
    const items = Object.values(state.nodes).filter((n) => !name || n.metadata.name === name);
    return json(res, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(state.rv) }, items });
  }
  const m = /^\/api\/v1\/nodes\/([^/]+)$/.exec(url.pathname);
  if (!m) return status(res, 404, 'NotFound', `the server could not find the requested resource ${url.pathname}`);
  const name = decodeURIComponent(m[1]);
  const node = state.nodes[name];
  if (!node) return status(res, 404, 'NotFound', `nodes "${name}" not found`);
  if (req.method === 'GET') return json(res, node);
  if (req.method !== 'PATCH') return status(res, 405, 'MethodNotAllowed', `${req.method} is not supported`);
  if (who.startsWith('system:node:') && who !== `system:node:${name}`)
    return status(res, 403, 'Forbidden', `nodes "${name}" is forbidden: User "${who}" cannot patch resource "nodes": node may only modify its own Node`);
  let patched;
  try {
    const patch = JSON.parse(body);
    const type = (req.headers['content-type'] ?? '').split(';')[0];
    if (type === 'application/json-patch+json') patched = jsonPatch(node, patch);
    else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
      const rv = patch?.metadata?.resourceVersion;
      if (rv !== undefined && rv !== node.metadata.resourceVersion)
        return status(res, 409, 'Conflict', `Operation cannot be fulfilled on nodes "${name}": the object has been modified; please apply your changes to the latest version and try again`);
      patched = mergePatch(node, patch);
    } else return status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format: ${type}`);
  } catch (e) {
    return status(res, 422, 'Invalid', `the patch cannot be applied: ${e.message}`);
  }
  record(who, 'patch');
  state.rv += 1;
  patched.metadata.name = name;
  patched.metadata.resourceVersion = String(state.rv);
  state.nodes[name] = patched;
  changed('MODIFIED', patched);
  return json(res, patched);
}

const onRequest = (req, res) => handle(req, res).catch((e) => status(res, 500, 'InternalError', String(e)));
const server = opt('--tls-cert')
  ? https.createServer({ cert: fs.readFileSync(opt('--tls-cert')), key: fs.readFileSync(opt('--tls-key')),
      ca: opt('--client-ca') ? fs.readFileSync(opt('--client-ca')) : undefined, requestCert: !!opt('--client-ca'),
      rejectUnauthorized: false }, onRequest)
  : http.createServer(onRequest);
server.listen(Number(opt('--port') ?? 0), '127.0.0.1', () => {
  // Written by rename, so a reader never sees a half-written (empty) port file.
  fs.writeFileSync(opt('--port-file') + '.tmp', String(server.address().port));
  fs.renameSync(opt('--port-file') + '.tmp', opt('--port-file'));
});
