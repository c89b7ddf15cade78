// A real, certified OpenID Provider on loopback for the sign-in tests: the npm
// package `oidc-provider` (pinned in package.json), with its own RSA signing
// key made here, one static client (Harpoon) and its development login and
// consent pages. People's `groups` claim goes into the ID token.
import { createServer } from "node:http";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import Provider from "oidc-provider";

/** Starts the provider at http://127.0.0.1:`port` with `client` and `people` (login -> groups). */
export async function startOidcProvider({ port, client, people }) {
  const issuer = `http://127.0.0.1:${port}`;
  const jwk = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  const provider = new Provider(issuer, {
    clients: [{
      client_id: client.id,
      client_secret: client.secret,
      redirect_uris: [client.redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    }],
    jwks: { keys: [{ ...jwk, kid: "harpoon-test", use: "sig", alg: "RS256" }] },
    cookies: { keys: [randomBytes(16).toString("hex")] },
    claims: { openid: ["sub"], profile: ["name"], groups: ["groups"] },
    // The claims a scope grants go into the ID token too, not only /userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      if (!(id in people)) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, name: id, groups: people[id] };
        },
      };
    },
  });
  // The development pages warn once on start; that is expected here.
  provider.on("server_error", (_ctx, err) => console.error("oidc-provider:", err));
  const server = createServer(provider.callback());
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    issuer,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
