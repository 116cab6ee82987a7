// strangler console: calls to the admin API of the replica serving the page, with the token kept
// in this tab's sessionStorage (never localStorage or a cookie).

export const TOKEN_KEY = "strangler.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // 0: no answer
    this.code = code;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch {
    throw new ApiFailure(0, "no_answer", "The admin API did not answer.");
  }
  let json = null;
  try {
    json = await resp.json();
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const error = (json && json.error) || {};
    throw new ApiFailure(resp.status, error.code || "unknown", error.message || resp.statusText);
  }
  return json;
}

export const routePath = (name) => `/api/routes/${encodeURIComponent(name)}`;
