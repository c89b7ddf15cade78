// A stand-in for GitHub's OAuth web application flow and the REST endpoints
// Harpoon reads, following GitHub's documentation (docs.github.com:
// "Authorizing OAuth apps", "REST API endpoints for users/orgs/teams"):
//   GET  /login/oauth/authorize     redirects back to redirect_uri with code and state
//   POST /login/oauth/access_token  code (single use, 10 minutes, PKCE S256) -> token;
//                                   errors answered 200 with an `error` body, as GitHub does
//   GET  /user, /user/orgs, /user/teams   with `Authorization: Bearer <token>`
// Test support only (GitHub cannot be reached from here); never part of the
// service. The person "signed in to GitHub" is `standin.user`, set by the test.
import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";

/** Starts the stand-in on 127.0.0.1:`port` for one OAuth app. */
export async function startGithubStandin({ port, clientId, clientSecret, users }) {
  const codes = new Map(); // code -> { user, redirectUri, challenge, expires, used }
  const tokens = new Map(); // token -> user
  const standin = { user: null, apiCalls: 0, exchanges: 0 };

  const json = (res, status, body) => {
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  };
  const readBody = (req) => new Promise((resolve) => {
    let data = "";
    req.on("data", (c) => { data += c; });
    req.on("end", () => resolve(data));
  });

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    if (req.method === "GET" && url.pathname === "/login/oauth/authorize") {
      const q = url.searchParams;
      if (q.get("client_id") !== clientId) return json(res, 404, { message: "unknown client_id" });
      if (!q.get("redirect_uri") || !q.get("state")) return json(res, 400, { message: "redirect_uri and state are required" });
      if (q.get("code_challenge_method") !== "S256" || !q.get("code_challenge")) {
        return json(res, 400, { message: "this app requires PKCE (S256)" });
      }
      if (!standin.user) return json(res, 401, { message: "nobody is signed in to the stand-in" });
      const code = randomBytes(10).toString("hex");
      codes.set(code, {
        user: standin.user, redirectUri: q.get("redirect_uri"), challenge: q.get("code_challenge"),
        expires: Date.now() + 600_000, used: false,
      });
      const back = new URL(q.get("redirect_uri"));
      back.searchParams.set("code", code);
      back.searchParams.set("state", q.get("state"));
      res.writeHead(302, { Location: back.toString() });
      return res.end();
    }
    if (req.method === "POST" && url.pathname === "/login/oauth/access_token") {
      standin.exchanges++;
      const form = new URLSearchParams(await readBody(req));
      if (form.get("client_id") !== clientId || form.get("client_secret") !== clientSecret) {
        return json(res, 200, { error: "incorrect_client_credentials",
          error_description: "The client_id and/or client_secret passed are incorrect." });
      }
      const entry = codes.get(form.get("code") || "");
      const bad = { error: "bad_verification_code", error_description: "The code passed is incorrect or expired." };
      if (!entry || entry.used || entry.expires < Date.now()) return json(res, 200, bad);
      entry.used = true; // single use, even when what follows fails
      if (form.get("redirect_uri") && form.get("redirect_uri") !== entry.redirectUri) {
        return json(res, 200, { error: "redirect_uri_mismatch",
          error_description: "The redirect_uri MUST match the registered callback URL for this application." });
      }
      const verifier = form.get("code_verifier") || "";
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      if (challenge !== entry.challenge) return json(res, 200, bad);
      const token = "gho_" + randomBytes(18).toString("hex");
      tokens.set(token, entry.user);
      return json(res, 200, { access_token: token, token_type: "bearer", scope: "read:org" });
    }
    if (req.method === "GET" && ["/user", "/user/orgs", "/user/teams"].includes(url.pathname)) {
      standin.apiCalls++;
      const auth = req.headers.authorization || "";
      const login = tokens.get(auth.replace(/^(Bearer|token) /i, ""));
      if (!login) return json(res, 401, { message: "Bad credentials" });
      const user = users[login];
      if (url.pathname === "/user") return json(res, 200, { login, id: user.id, type: "User", name: login });
      if (url.pathname === "/user/orgs") return json(res, 200, user.orgs.map((o, i) => ({ login: o, id: 100 + i })));
      return json(res, 200, user.teams.map((t, i) => {
        const [org, slug] = t.split("/");
        return { id: 200 + i, slug, name: slug, organization: { login: org } };
      }));
    }
    json(res, 404, { message: "Not Found" });
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  standin.url = `http://127.0.0.1:${port}`;
  standin.close = () => new Promise((resolve) => server.close(resolve));
  return standin;
}
