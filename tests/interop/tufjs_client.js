#!/usr/bin/env node
// The tuf-js client against a repository on disk:
// `node tufjs_client.js REPO_DIR TRUSTED_ROOT WORK_DIR TARGET OUT` refreshes from REPO_DIR
// (metadata/ and targets/, as `ballast repo` writes them), downloads TARGET into OUT and exits
// 0, or prints why it refused and exits 1.
'use strict';
const fs = require('fs');
const path = require('path');
const { Updater, BaseFetcher } = require('tuf-js');
const { DownloadHTTPError } = require('tuf-js/dist/error');

// tuf-js fetches over HTTP only; this serves file:// URLs so no server is needed.
class FileFetcher extends BaseFetcher {
  async fetch(url) {
    const file = new URL(url).pathname;
    if (!fs.existsSync(file)) throw new DownloadHTTPError('not found', 404);
    return fs.createReadStream(file);
  }
}

async function main() {
  const [repoDir, trustedRoot, workDir, target, out] = process.argv.slice(2);
  const metadataDir = path.join(workDir, 'metadata');
  const targetDir = path.join(workDir, 'targets');
  fs.mkdirSync(metadataDir, { recursive: true });
  fs.mkdirSync(targetDir, { recursive: true });
  if (!fs.existsSync(path.join(metadataDir, 'root.json'))) fs.copyFileSync(trustedRoot, path.join(metadataDir, 'root.json'));
  const base = 'file://' + path.resolve(repoDir);
  const updater = new Updater({ metadataDir, metadataBaseUrl: base + '/metadata', targetDir, targetBaseUrl: base + '/targets',
                                fetcher: new FileFetcher() });
  await updater.refresh();
  const info = await updater.getTargetInfo(target);
  if (!info) throw new Error(`no target ${target}`);
  await updater.downloadTarget(info, out);
}

main().catch((e) => {
  console.error(`tuf-js: ${e.name}: ${e.message}`);
  process.exit(1);
});
