// An independent certified client (panva openid-client) completing the code flow + PKCE against
// Brygga's built-in provider. It posts the provider's login form itself (like a browser would).
// Usage: node openid_client_login.mjs <issuer> <client_id> <client_secret> <redirect_uri> <login> <password> <totp>
import * as client from "openid-client";

const [issuer, clientId, clientSecret, redirectUri, login, password, totp] = process.argv.slice(2);

function cookiesFrom(response, jar) {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const [name, ...rest] = pair.split("=");
    jar.set(name.trim(), rest.join("="));
  }
}

const cookieHeader = (jar) => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");

const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(clientSecret), {
  execute: [client.allowInsecureRequests],
});
const verifier = client.randomPKCECodeVerifier();
const challenge = await client.calculatePKCECodeChallenge(verifier);
const nonce = client.randomNonce();
const state = client.randomState();
const authUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: "openid profile",
  code_challenge: challenge,
  code_challenge_method: "S256",
  nonce,
  state,
});

const jar = new Map();
const page = await fetch(authUrl, { redirect: "manual" });
cookiesFrom(page, jar);
const html = await page.text();
if (page.status !== 200) throw new Error(`login page: ${page.status} ${html}`);
const form = new URLSearchParams();
for (const match of html.matchAll(/<input type='hidden' name='(\w+)' value='([^']*)'>/g)) {
  form.set(match[1], match[2].replaceAll("&amp;", "&").replaceAll("&#x27;", "'").replaceAll("&quot;", '"'));
}
form.set("login", login);
form.set("password", password);
form.set("code", totp);
const posted = await fetch(new URL("login", issuer + "/"), {
  method: "POST",
  body: form,
  redirect: "manual",
  headers: { cookie: cookieHeader(jar) },
});
if (posted.status !== 302) throw new Error(`login post: ${posted.status} ${await posted.text()}`);
const callback = new URL(posted.headers.get("location"));

const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

// The same code must not work twice.
let replay = "accepted";
try {
  await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
  });
} catch (error) {
  replay = error.error || error.code || "refused";
}
console.log(JSON.stringify({ claims, userinfo, replay }));
