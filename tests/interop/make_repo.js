#!/usr/bin/env node
// Builds TUF repositories with @tufjs/models — an implementation independent of ballast — for
// the interop tests: `node make_repo.js OUT SCENARIO` writes OUT/before (a valid repository a
// client trusts first) and OUT/after (the same repository one publication later, valid or
// carrying the scenario's fault). Both are laid out as ballast serves them: metadata/ and
// targets/ with consistent snapshots. The expected outcome lives in the C++ test, not here.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
// Not re-exported by the package index.
const { Role, DelegatedRole } = require('@tufjs/models/dist/role');
const { Delegations } = require('@tufjs/models/dist/delegations');
const { Metadata, Root, Timestamp, Snapshot, Targets, Key, MetaFile, TargetFile, Signature } =
  require('@tufjs/models');
const { canonicalize } = require('@tufjs/canonical-json');

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const isoIn = (days) => new Date(Date.now() + days * 86400e3).toISOString().replace(/\.\d{3}Z$/, 'Z');

function newKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('hex');
  const keyVal = { public: raw };
  const keyID = sha256(canonicalize({ keytype: 'ed25519', scheme: 'ed25519', keyval: keyVal }));
  return { key: new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal }), privateKey };
}

const signer = (k) => (data) => new Signature({ keyID: k.key.keyID, sig: crypto.sign(null, data, k.privateKey).toString('hex') });

function serialize(md) { return Buffer.from(JSON.stringify(md.toJSON(), null, 1)); }

class Repo {
  constructor() {
    this.keys = { root: [newKey()], timestamp: [newKey()], snapshot: [newKey()], targets: [newKey()] };
    this.thresholds = { root: 1, timestamp: 1, snapshot: 1, targets: 1 };
    this.targets = {};   // name → bytes
    this.lengthOverride = {};
    this.delegated = null;  // { name, key, paths, targets: name → bytes }
  }
  write(dir, rel, bytes) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, bytes);
    return bytes;
  }
  sign(signed, role, signers) {
    const md = new Metadata(signed);
    for (const k of signers || this.keys[role]) md.sign(signer(k), true);
    return md;
  }
  root(version, expiresDays = 365) {
    const root = new Root({ version, specVersion: '1.0.31', expires: isoIn(expiresDays), consistentSnapshot: true });
    for (const role of Object.keys(this.keys)) {
      root.roles[role] = new Role({ keyIDs: this.keys[role].map((k) => k.key.keyID), threshold: this.thresholds[role] });
      for (const k of this.keys[role]) root.keys[k.key.keyID] = k.key;
    }
    return root;
  }
  writeRoot(dir, version, extraSigners = []) {
    const md = this.sign(this.root(version), 'root', [...this.keys.root, ...extraSigners]);
    const bytes = serialize(md);
    this.write(dir, `metadata/${version}.root.json`, bytes);
    this.write(dir, 'metadata/root.json', bytes);
  }
  addTarget(dir, name, bytes, map = this.targets) {
    map[name] = Buffer.from(bytes);
    const slash = name.lastIndexOf('/');
    const file = name.slice(0, slash + 1) + sha256(bytes) + '.' + name.slice(slash + 1);
    this.write(dir, 'targets/' + file, bytes);
  }
  targetsOf(version, targets, expiresDays, delegations) {
    const t = new Targets({ version, specVersion: '1.0.31', expires: isoIn(expiresDays), delegations });
    for (const [name, bytes] of Object.entries(targets))
      t.addTarget(new TargetFile({ path: name, length: this.lengthOverride[name] ?? bytes.length, hashes: { sha256: sha256(bytes) },
                                   unrecognizedFields: { custom: { origin: 'tufjs-models' } } }));
    return t;
  }
  writeTargets(dir, version, opt = {}) {
    let delegations;
    if (this.delegated) {
      const d = this.delegated;
      delegations = new Delegations({ keys: { [d.key.key.keyID]: d.key.key }, roles: {
        [d.name]: new DelegatedRole({ name: d.name, keyIDs: [d.key.key.keyID], threshold: 1, terminating: false, paths: d.paths }) } });
    }
    const t = this.targetsOf(version, this.targets, opt.expiresDays ?? 90, delegations);
    return this.write(dir, `metadata/${version}.targets.json`, serialize(this.sign(t, 'targets', opt.signers)));
  }
  writeDelegated(dir, version) {
    const d = this.delegated;
    const t = this.targetsOf(version, d.targets, 30);
    return this.write(dir, `metadata/${version}.${d.name}.json`, serialize(this.sign(t, null, [d.key])));
  }
  writeSnapshot(dir, version, targetsVersion, targetsBytes, opt = {}, extraMeta = {}) {
    const meta = targetsBytes && !opt.noHashes
      ? new MetaFile({ version: targetsVersion, length: targetsBytes.length, hashes: { sha256: sha256(targetsBytes) } })
      : new MetaFile({ version: targetsVersion });
    const s = new Snapshot({ version, specVersion: '1.0.31', expires: isoIn(opt.expiresDays ?? 7), meta: { 'targets.json': meta, ...extraMeta } });
    const md = this.sign(s, 'snapshot', opt.signers);
    if (opt.breakSignature) {
      const sig = Object.values(md.signatures)[0];
      const flipped = (parseInt(sig.sig[0], 16) ^ 1).toString(16) + sig.sig.slice(1);
      md.signatures[sig.keyID] = new Signature({ keyID: sig.keyID, sig: flipped });
    }
    return this.write(dir, `metadata/${version}.snapshot.json`, serialize(md));
  }
  writeTimestamp(dir, version, snapshotVersion, snapshotBytes, opt = {}) {
    const length = (opt.lengthDelta ?? 0) + snapshotBytes.length;
    const hash = opt.wrongHash ? sha256(Buffer.concat([snapshotBytes, Buffer.from('x')])) : sha256(snapshotBytes);
    const ts = new Timestamp({ version, specVersion: '1.0.31', expires: isoIn(opt.expiresDays ?? 1),
                               snapshotMeta: new MetaFile({ version: snapshotVersion, length, hashes: { sha256: hash } }) });
    let bytes = serialize(this.sign(ts, 'timestamp'));
    if (opt.padTo) bytes = Buffer.concat([bytes, Buffer.alloc(opt.padTo - bytes.length, ' ')]);
    return this.write(dir, 'metadata/timestamp.json', bytes);
  }
  // targets, snapshot and timestamp of one version, valid unless `opt` says otherwise.
  publish(dir, v, opt = {}) {
    const t = this.writeTargets(dir, v, opt.targets);
    const extra = {};
    if (this.delegated) {
      const b = this.writeDelegated(dir, v);
      extra[this.delegated.name + '.json'] = new MetaFile({ version: v, length: b.length, hashes: { sha256: sha256(b) } });
    }
    const s = this.writeSnapshot(dir, v, v, t, opt.snapshot, extra);
    this.writeTimestamp(dir, v, v, s, opt.timestamp);
  }
}

const [out, scenario] = process.argv.slice(2);
if (!out || !scenario) {
  console.error('usage: make_repo.js OUT SCENARIO');
  process.exit(2);
}
const before = path.join(out, 'before');
const after = path.join(out, 'after');
const repo = new Repo();
if (scenario === 'below-threshold') {
  repo.keys.targets.push(newKey());
  repo.thresholds.targets = 2;
}
repo.writeRoot(before, 1);
repo.addTarget(before, 'releases/1.0/manifest.json', 'release one manifest\n');
repo.publish(before, 1);
if (scenario === 'rollback-snapshot' || scenario === 'rollback-targets') repo.publish(before, 2);
fs.cpSync(before, after, { recursive: true });

const two = 'release two manifest\n';
switch (scenario) {
  case 'valid':
    repo.addTarget(after, 'releases/2.0/manifest.json', two);
    repo.publish(after, 2);
    break;
  case 'delegated':
  case 'delegated-outside-paths':
    // Top-level targets delegate to role "releases", which lists the new release; outside the
    // paths it is trusted for, its listing must be ignored.
    repo.delegated = { name: 'releases', key: newKey(), targets: {},
                       paths: scenario === 'delegated' ? ['releases/*/*'] : ['other/*'] };
    repo.addTarget(after, 'releases/2.0/manifest.json', two, repo.delegated.targets);
    repo.publish(after, 2);
    break;
  case 'root-rotation': {
    const oldRoot = repo.keys.root[0];
    repo.keys.root = [newKey()];
    repo.keys.timestamp = [newKey()];
    repo.writeRoot(after, 2, [oldRoot]);
    repo.addTarget(after, 'releases/2.0/manifest.json', two);
    repo.publish(after, 2);
    break;
  }
  case 'root-rotation-unsigned-by-old': {
    repo.keys.root = [newKey()];
    repo.writeRoot(after, 2);
    repo.publish(after, 2);
    break;
  }
  case 'expired-timestamp':
    repo.publish(after, 2, { timestamp: { expiresDays: -1 } });
    break;
  case 'expired-targets':
    repo.publish(after, 2, { targets: { expiresDays: -1 } });
    break;
  case 'rollback-snapshot': {
    // A new timestamp pointing back at snapshot v1, which the client has already moved past.
    const s1 = fs.readFileSync(path.join(after, 'metadata/1.snapshot.json'));
    repo.writeTimestamp(after, 3, 1, s1);
    break;
  }
  case 'rollback-targets': {
    // Snapshot v3 lists targets v1 although the client trusts a snapshot listing targets v2.
    const t1 = fs.readFileSync(path.join(after, 'metadata/1.targets.json'));
    const s = repo.writeSnapshot(after, 3, 1, t1);
    repo.writeTimestamp(after, 3, 3, s);
    break;
  }
  case 'mix-and-match': {
    // Snapshot v2 names targets v2 (version only), but the server hands out targets v1 under that name.
    const t1 = fs.readFileSync(path.join(after, 'metadata/1.targets.json'));
    repo.write(after, 'metadata/2.targets.json', t1);
    const s = repo.writeSnapshot(after, 2, 2, null);
    repo.writeTimestamp(after, 2, 2, s);
    break;
  }
  case 'below-threshold':
    repo.publish(after, 2, { targets: { signers: [repo.keys.targets[0]] } });
    break;
  case 'bad-signature':
    repo.publish(after, 2, { snapshot: { breakSignature: true } });
    break;
  case 'wrong-length-snapshot':
    repo.publish(after, 2, { timestamp: { lengthDelta: 7 } });
    break;
  case 'wrong-hash-snapshot':
    repo.publish(after, 2, { timestamp: { wrongHash: true } });
    break;
  case 'wrong-hash-target': {
    repo.addTarget(after, 'releases/2.0/manifest.json', two);
    repo.publish(after, 2);
    // Same length, other bytes, under the name the metadata points at.
    const file = path.join(after, 'targets/releases/2.0', sha256(two) + '.manifest.json');
    fs.writeFileSync(file, two.toUpperCase());
    break;
  }
  case 'wrong-length-target':
    repo.addTarget(after, 'releases/2.0/manifest.json', two);
    repo.lengthOverride['releases/2.0/manifest.json'] = two.length - 5;
    repo.publish(after, 2);
    break;
  case 'oversized-timestamp':
    repo.publish(after, 2, { timestamp: { padTo: 200 * 1024 } });
    break;
  default:
    console.error(`unknown scenario ${scenario}`);
    process.exit(2);
}

// OUT/repaired: the publisher's next good publication on top of OUT/after, which a client must
// accept whatever it refused before.
const repaired = path.join(out, 'repaired');
fs.cpSync(after, repaired, { recursive: true });
if (scenario === 'root-rotation-unsigned-by-old') fs.rmSync(path.join(repaired, 'metadata/2.root.json'));
repo.lengthOverride = {};
repo.publish(repaired, 10);
