// An independent OpenID Provider (panva oidc-provider) for Brygga's relying-party tests.
// Usage: node oidc_provider_server.mjs <port> <brygga base URL> <client secret>
// Test hooks (loopback only): GET /__next?account=..&acr=.. chooses who logs in next;
// the back-channel logout goes through /__relay, which remembers the last logout token.
import Provider from "oidc-provider";

const [portText, rpBase, clientSecret] = process.argv.slice(2);
const port = Number(portText);
const issuer = `http://127.0.0.1:${port}`;
let next = { account: "extern-eva", acr: "http://id.sambi.se/loa/loa3" };
let lastLogoutToken = null;

const configuration = {
  clients: [
    {
      client_id: "brygga",
      client_secret: clientSecret,
      redirect_uris: [`${rpBase}/auth/callback`],
      post_logout_redirect_uris: [`${rpBase}/`],
      backchannel_logout_uri: `${issuer}/__relay`,
      backchannel_logout_session_required: true,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    claimsParameter: { enabled: true },
  },
  acrValues: ["http://id.sambi.se/loa/loa2", "http://id.sambi.se/loa/loa3"],
  claims: { openid: ["sub"], profile: ["name", "employeeHsaId"] },
  cookies: { keys: ["interop-test-cookie-key"] },
  // Everything in this test runs on loopback, which oidc-provider's SSRF guard refuses by design.
  fetch(url, options) {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: "Eva Extern", employeeHsaId: "SE2321000016-EVA1" };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile");
    grant.addOIDCClaims(["name", "employeeHsaId", "acr"]);
    await grant.save();
    return grant;
  },
};

const provider = new Provider(issuer, configuration);

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

provider.use(async (ctx, nextMiddleware) => {
  if (ctx.path === "/__next") {
    next = { account: ctx.query.account || next.account, acr: ctx.query.acr || next.acr };
    ctx.body = next;
    return;
  }
  if (ctx.path === "/__last-logout-token") {
    ctx.body = { logout_token: lastLogoutToken };
    return;
  }
  if (ctx.path === "/__relay" && ctx.method === "POST") {
    const body = await readBody(ctx.req);
    lastLogoutToken = new URLSearchParams(body).get("logout_token");
    const answer = await fetch(`${rpBase}/auth/backchannel-logout`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });
    ctx.status = answer.status;
    ctx.body = await answer.text();
    return;
  }
  if (ctx.path.startsWith("/interaction/")) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const result = { login: { accountId: next.account, acr: next.acr, amr: ["hwk", "pin"] } };
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
    return;
  }
  await nextMiddleware();
});

provider.on("backchannel.error", (...args) => console.log("backchannel.error", ...args.map((a) => (a?.message ? a.message + " " + String(a.cause) : a?.clientId || String(a)))));
provider.on("end_session.error", (error) => console.log(`end_session.error ${error}`));
provider.on("server_error", (ctx, error) => console.log(`server_error ${error}`));

provider.listen(port, "127.0.0.1", () => console.log(`listening ${issuer}`));
