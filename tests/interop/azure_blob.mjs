// Azure Blob Storage helpers for the integration tests, with Microsoft's own SDK against Azurite
// (the emulator's well-known devstoreaccount1 key; TLS trusted through NODE_EXTRA_CA_CERTS):
//   node azure_blob.mjs upload ENDPOINT CONTAINER DIR   create CONTAINER (no anonymous access) and
//                                                       upload every file below DIR as its relative path
//   node azure_blob.mjs sas ENDPOINT CONTAINER [EXPIRY_SECONDS [PERMISSIONS]]  print a container SAS
//                                                       (default: read+list)
//   node azure_blob.mjs create ENDPOINT CONTAINER       create CONTAINER, no anonymous access
// ENDPOINT: https://127.0.0.1:PORT/devstoreaccount1
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import {
  BlobServiceClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from "@azure/storage-blob";

const account = "devstoreaccount1";
const key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const credential = new StorageSharedKeyCredential(account, key);
const [command, endpoint, containerName, arg] = process.argv.slice(2);

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

if (command === "upload") {
  const container = new BlobServiceClient(endpoint, credential).getContainerClient(containerName);
  await container.createIfNotExists();  // no `access`: private, anonymous requests are refused
  for (const path of files(arg)) {
    const body = readFileSync(path);
    await container.getBlockBlobClient(relative(arg, path)).upload(body, body.length);
  }
} else if (command === "create") {
  await new BlobServiceClient(endpoint, credential).getContainerClient(containerName).createIfNotExists();
} else if (command === "sas") {
  const now = Date.now();
  const sas = generateBlobSASQueryParameters(
    {
      containerName,
      permissions: ContainerSASPermissions.parse(process.argv[6] ?? "rl"),
      startsOn: new Date(now - 5 * 60 * 1000),
      expiresOn: new Date(now + Number(arg ?? 3600) * 1000),
    },
    credential,
  );
  console.log(sas.toString());
} else {
  console.error("usage: azure_blob.mjs upload|create|sas ENDPOINT CONTAINER ...");
  process.exit(2);
}
