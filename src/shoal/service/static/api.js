// Talking to shoal serve: REST with the token (if any) in an Authorization header, and
// WebSockets that reconnect by themselves. The token lives in sessionStorage only.

const TOKEN_KEY = "shoal.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(typeof body?.detail === "string" ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

function headers(extra = {}) {
  const all = { Accept: "application/json", ...extra };
  const current = token();
  if (current) all.Authorization = `Bearer ${current}`;
  return all;
}

export async function request(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) onUnauthorized();
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

// A download that needs the Authorization header: fetched, then saved from a blob.
export async function download(path, filename) {
  const response = await fetch(path, { headers: headers({ Accept: "*/*" }) });
  if (response.status === 401) onUnauthorized();
  if (!response.ok) throw new ApiError(response.status, { detail: await response.text() });
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// Opens what a path returns (a result's JSON, a saved body) in a new tab, as text.
export async function openAsText(path) {
  const response = await fetch(path, { headers: headers({ Accept: "*/*" }) });
  if (response.status === 401) onUnauthorized();
  const blob = new Blob([await response.arrayBuffer()], { type: "text/plain;charset=utf-8" });
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

// A WebSocket that reconnects with backoff. The token travels as a subprotocol
// ("bearer.<base64url>"), never in the URL. onStatus(true|false) reports the link.
export class LiveSocket {
  constructor(path, { onMessage, onStatus, onReconnect }) {
    this.path = path;
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.onReconnect = onReconnect || (() => {});
    this.closed = false;
    this.delay = 500;
    this.everOpen = false;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const protocols = ["shoal"];
    const current = token();
    if (current) protocols.push(`bearer.${base64url(current)}`);
    const socket = new WebSocket(`${scheme}//${location.host}${this.path}`, protocols);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 500;
      this.onStatus(true);
      if (this.everOpen) this.onReconnect();
      this.everOpen = true;
    });
    socket.addEventListener("message", (event) => {
      try {
        this.onMessage(JSON.parse(event.data));
      } catch {
        /* not JSON: ignored */
      }
    });
    socket.addEventListener("close", () => {
      this.onStatus(false);
      if (this.closed) return;
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    });
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }
}
