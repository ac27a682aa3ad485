// A protocol-following stand-in for the token endpoint of Azure's Instance Metadata Service
// (no IMDS emulator exists): GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R
// with "Metadata: true" answers {"access_token","expires_on","resource","token_type"} like IMDS.
// The token is a JWT with the claims Azurite's basic OAuth checks (issuer, audience, nbf, exp,
// iat; Azurite does not check the signature). GET /issued answers the number of tokens issued.
//   node imds-token-server.mjs PORT_FILE [--first-expired]
// --first-expired: the first token's exp is already past while its expires_on says an hour, as
// when a token is revoked or a clock is off: the service refuses it and the client must refresh.
import { createServer } from "node:http";
import { renameSync, writeFileSync } from "node:fs";

const [portFile, mode] = process.argv.slice(2);
let issued = 0;
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");

const server = createServer((req, res) => {
  const url = new URL(req.url, "http://imds");
  if (url.pathname === "/issued") return res.end(String(issued));
  if (url.pathname !== "/metadata/identity/oauth2/token") {
    res.statusCode = 404;
    return res.end();
  }
  const resource = url.searchParams.get("resource");
  if (req.headers["metadata"] !== "true" || url.searchParams.get("api-version") !== "2018-02-01" || !resource) {
    res.statusCode = 400;
    return res.end(JSON.stringify({ error: "invalid_request", error_description: "Required metadata header not specified" }));
  }
  issued += 1;
  const now = Math.floor(Date.now() / 1000);
  const exp = mode === "--first-expired" && issued === 1 ? now - 60 : now + 3600;
  const claims = {
    aud: resource.replace(/\/$/, ""),
    iss: "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
    iat: now - 120, nbf: now - 120, exp,
    oid: "00000000-0000-0000-0000-000000000001", sub: "ballast-test-vm", tid: "72f988bf-86f1-41af-91ab-2d7cd011db47",
  };
  if (url.searchParams.get("client_id")) claims.appid = url.searchParams.get("client_id");
  const token = `${b64({ alg: "RS256", typ: "JWT" })}.${b64(claims)}.${Buffer.from("not-signed").toString("base64url")}`;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({
    access_token: token, expires_in: "3600", expires_on: String(now + 3600), ext_expires_in: "3600",
    not_before: String(now - 120), resource, token_type: "Bearer",
  }));
});
// Written by rename, so a reader never sees a half-written port.
server.listen(0, "127.0.0.1", () => {
  writeFileSync(`${portFile}.tmp`, String(server.address().port));
  renameSync(`${portFile}.tmp`, portFile);
});
