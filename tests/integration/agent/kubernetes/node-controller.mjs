// A small node lifecycle controller on @kubernetes/client-node, as a user would write one:
//   node node-controller.mjs KUBECONFIG request NODE '{"schemaVersion":1,…}'
//     merge-patches the request annotation onto the Node;
//   node node-controller.mjs KUBECONFIG wait NODE OPERATION_ID PHASE[,PHASE…] TIMEOUT_SECONDS
//     watches the Node until its status annotation answers OPERATION_ID with one of the phases,
//     prints that status (one JSON line) and exits 0; exits 1 when the time is up.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const k8s = require(process.env.BALLAST_INTEROP + '/node_modules/@kubernetes/client-node');

const [kubeconfigPath, verb, node, ...rest] = process.argv.slice(2);
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfigPath);
const api = kc.makeApiClient(k8s.CoreV1Api);

if (verb === 'request') {
  const body = { metadata: { annotations: { 'ballast.dev/update-request': rest[0] } } };
  await api.patchNode({ name: node, body }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  process.exit(0);
}

if (verb === 'wait') {
  const [operationId, phases, timeout] = rest;
  const wanted = phases.split(',');
  const answered = (n) => {
    const text = n?.metadata?.annotations?.['ballast.dev/update-status'];
    if (!text) return false;
    const s = JSON.parse(text);
    if (s.operationId !== operationId || !wanted.includes(s.phase)) return false;
    console.log(JSON.stringify(s));
    process.exit(0);
  };
  setTimeout(() => { console.error(`no answer ${phases} to ${operationId} in ${timeout} s`); process.exit(1); }, Number(timeout) * 1000);
  // List, then watch from the list's resourceVersion; watch again when the server ends a watch.
  for (;;) {
    const list = await api.listNode({ fieldSelector: `metadata.name=${node}` });
    list.items.forEach(answered);
    await new Promise((resolve) => {
      new k8s.Watch(kc).watch('/api/v1/nodes', { fieldSelector: `metadata.name=${node}`, resourceVersion: list.metadata.resourceVersion,
        allowWatchBookmarks: true }, (type, obj) => { if (type !== 'BOOKMARK') answered(obj); }, () => resolve())
        .catch(() => setTimeout(resolve, 500));
    });
  }
}
console.error(`unknown verb ${verb}`);
process.exit(2);
