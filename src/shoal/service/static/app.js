// The shoal dashboard: the jobs list, a job's live page, and the new-job form.
// Routes are the URL's hash: #/ (jobs), #/jobs/NAME (one job), #/new (the form).

import { ApiError, LiveSocket, download, openAsText, request, setToken, token, whenUnauthorized } from "./api.js";
import { LineChart } from "./chart.js";
import { bytes, h, number, rate, replace, time } from "./dom.js";

const view = document.getElementById("view");
const connection = document.getElementById("connection");
const FORMATS = ["jsonl", "csv", "parquet", "warc"];
const RECENT = 50;

let leaving = () => {};

// -- token --------------------------------------------------------------------------

const tokenDialog = document.getElementById("token-dialog");
const tokenInput = document.getElementById("token-input");
document.getElementById("token-button").addEventListener("click", askToken);
document.getElementById("token-cancel").addEventListener("click", () => tokenDialog.close());
document.getElementById("token-form").addEventListener("submit", () => {
  setToken(tokenInput.value.trim());
  tokenInput.value = "";
  route();
});
whenUnauthorized(askToken);

function askToken() {
  if (!tokenDialog.open) {
    tokenInput.value = "";
    tokenDialog.showModal();
  }
}

// -- confirmation ---------------------------------------------------------------------

function confirmAction(text) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
    document.getElementById("confirm-yes").focus();
  });
}

// -- live status --------------------------------------------------------------------

function showLink(open) {
  connection.textContent = open ? "live" : "disconnected — reconnecting…";
  connection.className = `connection ${open ? "live" : "down"}`;
}

// -- jobs list --------------------------------------------------------------------------

function counts(job) {
  const c = job.counts || {};
  return { done: c.done ?? 0, failed: c.failed ?? 0, total: c.total ?? 0 };
}

function progressBar(job) {
  const { done, failed, total } = counts(job);
  const share = total ? Math.min(100, ((done + failed) / total) * 100) : 0;
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
      "aria-valuenow": Math.round(share), "aria-label": `${job.name} progress` },
    h("span", { style: `width:${share}%` }),
  );
}

function jobRow(job) {
  const { done, failed, total } = counts(job);
  return h(
    "tr",
    { "data-job": job.name },
    h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(job.name)}` }, job.name)),
    h("td", { class: `state ${job.state}`, "data-field": "state" }, job.state),
    h("td", {}, progressBar(job)),
    h("td", { class: "num", "data-field": "done" }, `${number(done + failed)} / ${number(total)}`),
    h("td", { class: "num", "data-field": "rate" }, rate(job.pages_per_second)),
    h("td", { class: "num", "data-field": "failed" }, number(failed)),
    h("td", { class: "hide-narrow" }, time(job.started_at)),
    h("td", { class: "hide-narrow" }, time(job.finished_at)),
  );
}

async function jobsView() {
  const body = h("tbody");
  const table = h(
    "table",
    { "aria-label": "jobs" },
    h("thead", {}, h("tr", {},
      h("th", {}, "Job"), h("th", {}, "State"), h("th", {}, "Progress"),
      h("th", { class: "num" }, "Finished"), h("th", { class: "num" }, "Pages/s"),
      h("th", { class: "num" }, "Failed"), h("th", { class: "hide-narrow" }, "Started"),
      h("th", { class: "hide-narrow" }, "Ended"))),
    body,
  );
  const message = h("p", { class: "muted" });
  replace(view, h("h1", {}, "Jobs"), h("div", { class: "card" }, table, message));

  const jobs = new Map();
  async function refresh() {
    try {
      const list = (await request("GET", "/jobs")).jobs;
      jobs.clear();
      for (const job of list) jobs.set(job.name, job);
      replace(body, list.map(jobRow));
      message.textContent = list.length ? "" : "No jobs yet: start one with New job.";
    } catch (error) {
      message.textContent = error.message;
      message.className = "error";
    }
  }
  await refresh();
  const socket = new LiveSocket("/events", {
    onStatus: showLink,
    onReconnect: refresh,
    onMessage(event) {
      const job = jobs.get(event.job);
      if (!job || event.type === "state") {
        refresh();
        return;
      }
      if (event.type === "progress") {
        applyProgress(job, event);
        const row = body.querySelector(`tr[data-job="${CSS.escape(job.name)}"]`);
        row?.replaceWith(jobRow(job));
      }
    },
  });
  return () => socket.close();
}

// A progress message's numbers (done, failed, total, bytes, pages_per_second...) on a job.
function applyProgress(job, event) {
  const current = job.counts || {};
  job.counts = {
    ...current,
    done: event.done ?? current.done,
    failed: event.failed ?? current.failed,
    total: event.total ?? current.total,
  };
  if (event.pages_per_second !== undefined) job.pages_per_second = event.pages_per_second;
  if (event.bytes !== undefined) job.bytes = event.bytes;
}

// -- one job ----------------------------------------------------------------------------

function statGrid(job) {
  const { done, failed, total } = counts(job);
  const item = (label, value, field) =>
    h("div", { class: "stat" }, h("b", { "data-stat": field }, value), h("span", {}, label));
  return h(
    "div",
    { class: "stats" },
    item("state", job.state, "state"),
    item("done", number(done), "done"),
    item("failed", number(failed), "failed"),
    item("total", number(total), "total"),
    item("pages/s", rate(job.pages_per_second), "rate"),
    item("bytes", bytes(job.bytes), "bytes"),
  );
}

function bars(title, entries) {
  const list = Object.entries(entries || {}).sort((a, b) => b[1] - a[1]);
  const top = Math.max(1, ...list.map(([, n]) => n));
  return h(
    "div",
    { class: "card" },
    h("h2", {}, title),
    list.length
      ? h("div", { class: "bars" }, list.map(([name, n]) =>
          h("div", {}, h("span", {}, name), h("i", { style: `width:${(n / top) * 100}%` }),
            h("span", { class: "num" }, number(n)))))
      : h("p", { class: "muted" }, "none yet"),
  );
}

function resultLinks(name, result, bodies) {
  const base = `/jobs/${encodeURIComponent(name)}/results/${result.id ?? result.request_id}`;
  return h(
    "td",
    {},
    h("a", { href: result.url, target: "_blank", rel: "noopener noreferrer" }, "open"),
    " · ",
    h("button", { type: "button", class: "link", onclick: () => openAsText(base) }, "json"),
    bodies && result.body_hash
      ? [" · ", h("button", { type: "button", class: "link", onclick: () => openAsText(`${base}/body`) }, "body")]
      : null,
  );
}

function savesBodies(job) {
  return Boolean(job.spec?.save_bodies);
}

function titleOf(result) {
  const title = result.title ?? result.fields?.title;
  return typeof title === "string" ? title : "";
}

function resultRow(name, result, bodies = false) {
  return h(
    "tr",
    {},
    h("td", { class: "num" }, result.status ?? "–"),
    h("td", {}, result.error_kind ?? ""),
    h("td", { class: "url" }, result.url),
    h("td", { class: "hide-narrow" }, titleOf(result)),
    h("td", { class: "hide-narrow" }, result.error ?? ""),
    resultLinks(name, result, bodies),
  );
}

function resultsTable(label, rows) {
  return h(
    "table",
    { "aria-label": label },
    h("thead", {}, h("tr", {}, h("th", { class: "num" }, "Status"), h("th", {}, "Error kind"),
      h("th", {}, "URL"), h("th", { class: "hide-narrow" }, "Title"),
      h("th", { class: "hide-narrow" }, "Error"), h("th", {}, "Links"))),
    rows,
  );
}

async function jobView(name) {
  const path = `/jobs/${encodeURIComponent(name)}`;
  let job;
  try {
    job = await request("GET", path);
  } catch (error) {
    replace(view, h("h1", {}, name), h("p", { class: "error" }, error.message));
    return () => {};
  }
  const title = h("h1", {}, `Job ${job.name}`);
  const stats = h("div", { class: "card" });
  const summary = h("div");
  const actions = h("div", { class: "actions" });
  const canvas = h("canvas", { role: "img", "aria-label": "pages per second over time" });
  const chart = new LineChart(canvas, [
    { label: "pages/s", color: "#1f6feb", format: (v) => v.toFixed(1) },
    { label: "bytes/s", color: "#1a7f37", format: bytes },
  ]);
  const hostsBody = h("tbody");
  const recentBody = h("tbody");
  const failuresBody = h("tbody");
  const resultsBody = h("tbody");
  const resultsNote = h("p", { class: "muted" });
  const statusFilter = h("input", { id: "filter-status", placeholder: "e.g. 5xx or 404", size: 10 });
  const kindFilter = h("input", { id: "filter-kind", placeholder: "e.g. connect_error", size: 16 });
  const failureNote = h("p", { class: "muted" });
  let hostsLoaded = 0;

  function render() {
    replace(stats, statGrid(job));
    replace(summary, bars("Status classes", job.by_status_class), bars("Error kinds", job.by_error_kind));
    replace(actions, actionButtons(job, reload));
  }

  async function reload() {
    try {
      job = await request("GET", path);
      render();
      await loadFailures();
      await loadResults();
      await loadHosts();
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) location.hash = "#/";
    }
  }

  async function loadFailures() {
    const query = new URLSearchParams({ limit: "100", failed: "true" });
    if (statusFilter.value.trim()) query.set("status", statusFilter.value.trim());
    if (kindFilter.value.trim()) query.set("error_kind", kindFilter.value.trim());
    try {
      const page = await request("GET", `${path}/results?${query}`);
      const rows = (page.results || []).map((r) => resultRow(job.name, r, savesBodies(job)));
      replace(failuresBody, rows);
      failureNote.textContent = rows.length ? "" : "no failures";
      failureNote.className = "muted";
    } catch (error) {
      failureNote.textContent = error.message;
      failureNote.className = "error";
    }
  }

  async function loadResults() {
    try {
      const page = await request("GET", `${path}/results?limit=100`);
      replace(resultsBody, (page.results || []).map((r) => resultRow(job.name, r, savesBodies(job))));
      resultsNote.textContent = page.next_after ? "the first 100; export for the rest" : "";
    } catch (error) {
      resultsNote.textContent = error.message;
    }
  }

  async function loadHosts() {
    hostsLoaded = Date.now() / 1000;
    try {
      const hosts = await request("GET", `${path}/hosts`);
      replace(hostsBody, hosts.map((host) => h("tr", {},
        h("td", {}, host.host), h("td", { class: "num" }, number(host.leased)),
        h("td", { class: "num" }, number(host.done)), h("td", { class: "num" }, number(host.failed)),
        h("td", { class: "num" }, number(host.waiting)),
        h("td", {}, `${rate(host.delay)} s`), h("td", {}, host.robots ?? "–"))));
    } catch {
      replace(hostsBody);
    }
  }

  const filterForm = h(
    "form",
    { class: "filters", onsubmit: (event) => { event.preventDefault(); loadFailures(); } },
    h("label", { for: "filter-status" }, "Status", statusFilter),
    h("label", { for: "filter-kind" }, "Error kind", kindFilter),
    h("button", { type: "submit" }, "Filter"),
  );
  const exports = h("div", { class: "actions" }, FORMATS.map((format) =>
    h("button", { type: "button", class: "secondary",
      onclick: () => download(`${path}/export?format=${format}`, `${job.name}.${format === "warc" ? "warc.gz" : format}`) },
      `Export ${format}`)));

  replace(
    view,
    title,
    actions,
    stats,
    h("div", { class: "card" }, h("h2", {}, "Throughput"),
      h("p", { class: "muted" }, "Pages and bytes per second, live while the job runs."), canvas),
    summary,
    h("div", { class: "card" }, h("h2", {}, "Hosts"), h("table", { "aria-label": "hosts" },
      h("thead", {}, h("tr", {}, h("th", {}, "Host"), h("th", { class: "num" }, "In flight"),
        h("th", { class: "num" }, "Done"), h("th", { class: "num" }, "Failed"),
        h("th", { class: "num" }, "Waiting"), h("th", {}, "Delay"), h("th", {}, "robots.txt"))),
        hostsBody)),
    h("div", { class: "card" }, h("h2", {}, "Recent pages"),
      h("p", { class: "muted" }, "Pages appear here as they are recorded."),
      resultsTable("recent pages", recentBody)),
    h("div", { class: "card" }, h("h2", {}, "Failures"), filterForm, resultsTable("failures", failuresBody), failureNote),
    h("div", { class: "card" }, h("h2", {}, "Results"), resultsTable("results", resultsBody), resultsNote),
    h("div", { class: "card" }, h("h2", {}, "Export"), exports),
  );
  render();
  await loadFailures();
  await loadResults();
  await loadHosts();

  let lastTick = null;
  const socket = new LiveSocket(`${path}/events`, {
    onStatus: showLink,
    onReconnect: reload,
    onMessage(event) {
      if (event.type === "progress") {
        applyProgress(job, event);
        render();
        const now = Date.now() / 1000;
        const finished = (event.done ?? 0) + (event.failed ?? 0);
        if (lastTick) {
          const seconds = Math.max(0.001, now - lastTick.at);
          chart.add(now, Math.max(0, finished - lastTick.finished) / seconds,
            Math.max(0, (event.bytes ?? 0) - lastTick.bytes) / seconds);
        }
        lastTick = { at: now, finished, bytes: event.bytes ?? 0 };
        if (now - hostsLoaded > 5) loadHosts();
      } else if (event.type === "page") {
        recentBody.prepend(resultRow(job.name, event));
        while (recentBody.children.length > RECENT) recentBody.lastChild.remove();
        if (event.error_kind || (event.status ?? 0) >= 400) loadFailures();
      } else if (event.type === "state") {
        job.state = event.state;
        reload();
      }
    },
  });
  return () => socket.close();
}

function actionButtons(job, after) {
  const path = `/jobs/${encodeURIComponent(job.name)}`;
  const act = (label, verb, className, question) =>
    h("button", {
      type: "button",
      class: className,
      async onclick() {
        if (question && !(await confirmAction(question))) return;
        try {
          if (verb === "delete") {
            await request("DELETE", path);
            location.hash = "#/";
            return;
          }
          await request("POST", `${path}/${verb}`);
          await after();
        } catch (error) {
          alertLine(error.message);
        }
      },
    }, label);
  const running = job.state === "running" || job.state === "queued";
  return [
    running ? act("Pause", "pause", "secondary") : null,
    job.state === "paused" ? act("Resume", "resume", "secondary") : null,
    running || job.state === "paused"
      ? act("Cancel", "cancel", "secondary", `Cancel job ${job.name}? What it recorded is kept.`)
      : null,
    act("Delete", "delete", "danger", `Delete job ${job.name} and everything it recorded?`),
  ];
}

function alertLine(text) {
  const line = h("p", { class: "error", role: "alert" }, text);
  view.prepend(line);
  setTimeout(() => line.remove(), 8000);
}

// -- new job ----------------------------------------------------------------------------

const FIELDS = [
  { name: "name", label: "Name", type: "text", hint: "letters, digits, _ . -" },
  { name: "kind", label: "Kind", type: "select", options: ["crawl", "fetch"] },
  { name: "seeds", label: "Seed URLs (one per line)", type: "textarea", kind: "crawl" },
  { name: "urls", label: "URLs to fetch (one per line)", type: "textarea", kind: "fetch" },
  { name: "depth", label: "Depth", type: "number", kind: "crawl" },
  { name: "scope", label: "Scope", type: "select", options: ["host", "domain", "prefix", "any"], kind: "crawl" },
  { name: "max_pages", label: "Max pages", type: "number", kind: "crawl" },
  { name: "per_host", label: "Requests in flight per host", type: "number" },
  { name: "concurrency", label: "Requests in flight in total", type: "number" },
  { name: "delay", label: "Delay between requests to a host (s)", type: "number", step: "0.01" },
  { name: "retries", label: "Retries", type: "number" },
  { name: "extract", label: "Extraction rules", type: "textarea", hint: "NAME=RULE per line, e.g. title=css:title::text" },
  { name: "ignore_robots", label: "Ignore robots.txt", type: "checkbox", kind: "crawl" },
];

function newJobView() {
  const errors = new Map();
  const inputs = new Map();
  const top = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "job card", novalidate: true });
  for (const field of FIELDS) {
    const id = `field-${field.name}`;
    let input;
    if (field.type === "select") {
      input = h("select", { id, name: field.name }, field.options.map((o) => h("option", { value: o }, o)));
    } else if (field.type === "textarea") {
      input = h("textarea", { id, name: field.name });
    } else {
      input = h("input", { id, name: field.name, type: field.type, step: field.step, min: field.type === "number" ? 0 : undefined });
    }
    const error = h("p", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
    input.setAttribute("aria-describedby", `${id}-error`);
    inputs.set(field.name, input);
    errors.set(field.name, error);
    const wrapper = h("div", { "data-kind": field.kind },
      field.type === "checkbox"
        ? h("label", { for: id }, input, " ", field.label)
        : [h("label", { for: id }, field.label), input],
      field.hint ? h("span", { class: "muted" }, field.hint) : null, error);
    if (field.type === "checkbox") input.style.width = "auto";
    form.append(wrapper);
  }
  const kind = inputs.get("kind");
  const showKind = () => {
    for (const wrapper of form.querySelectorAll("[data-kind]")) {
      const only = wrapper.getAttribute("data-kind");
      wrapper.hidden = Boolean(only) && only !== kind.value;
    }
  };
  kind.addEventListener("change", showKind);
  showKind();
  form.append(h("div", { class: "actions" }, h("button", { type: "submit" }, "Start job")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const error of errors.values()) error.textContent = "";
    top.textContent = "";
    const body = { kind: kind.value };
    for (const field of FIELDS) {
      if (field.name === "kind" || (field.kind && field.kind !== kind.value)) continue;
      const input = inputs.get(field.name);
      if (field.name === "ignore_robots") {
        if (input.checked) body.robots = false;
      } else if (field.type === "checkbox") {
        if (input.checked) body[field.name] = true;
      } else if (field.name === "extract") {
        const rules = {};
        for (const line of input.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
          const at = line.indexOf("=");
          if (at > 0) rules[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        }
        body.extract = rules;
      } else if (field.type === "textarea") {
        const lines = input.value.split("\n").map((l) => l.trim()).filter(Boolean);
        body[field.name] = lines;
      } else if (input.value.trim() !== "") {
        body[field.name] = field.type === "number" ? Number(input.value) : input.value.trim();
      }
    }
    try {
      const job = await request("POST", "/jobs", body);
      location.hash = `#/jobs/${encodeURIComponent(job.name)}`;
    } catch (error) {
      const detail = error.body?.detail;
      if (Array.isArray(detail)) {
        for (const item of detail) {
          const loc = (item.loc || []).map((part) => (part === "robots" ? "ignore_robots" : part));
          const field = [...loc].reverse().find((part) => errors.has(part));
          const target = errors.get(field);
          if (target) target.textContent = item.msg;
          else top.textContent = item.msg;
        }
      } else {
        top.textContent = error.message;
      }
    }
  });
  replace(view, h("h1", {}, "New job"), top, form);
  inputs.get("name").focus();
  return () => {};
}

// -- routing ----------------------------------------------------------------------------

async function route() {
  leaving();
  leaving = () => {};
  const hash = location.hash || "#/";
  const match = hash.match(/^#\/jobs\/(.+)$/);
  if (match) leaving = await jobView(decodeURIComponent(match[1]));
  else if (hash === "#/new") leaving = newJobView();
  else leaving = await jobsView();
  view.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
if (!token() && document.body.dataset.tokenRequired === "true") askToken();
route();
