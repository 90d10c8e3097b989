// Shared by the host and the fleet dashboards: fetching, tables, charts.
"use strict";

const SG = (() => {
  const token = () => sessionStorage.getItem("sshguard-go-token") || "";

  // get fetches a path relative to the page and returns its JSON; a 401
  // shows the token form.
  async function get(path) {
    const headers = {};
    if (token()) headers["Authorization"] = "Bearer " + token();
    const r = await fetch(path, { headers, cache: "no-store" });
    if (r.status === 401) {
      askToken();
      throw new Error("this host asks for its API token");
    }
    const body = await r.json().catch(() => null);
    if (!r.ok) {
      const e = new Error((body && body.error) || r.status + " " + r.statusText);
      e.status = r.status;
      throw e;
    }
    return body;
  }

  // getOr is get, but where the data is closed to this page (403: a fleet
  // aggregator without a token of its own passes only the counts) it
  // gives fallback, and the page says why.
  async function getOr(path, fallback) {
    try {
      return await get(path);
    } catch (e) {
      if (e.status !== 403) throw e;
      const n = document.getElementById("closed");
      if (n) {
        n.textContent = e.message;
        n.hidden = false;
      }
      return fallback;
    }
  }

  function askToken() {
    const f = document.getElementById("login");
    if (!f || !f.hidden) return;
    f.hidden = false;
    f.onsubmit = (e) => {
      e.preventDefault();
      sessionStorage.setItem("sshguard-go-token", document.getElementById("token").value.trim());
      f.hidden = true;
      location.reload();
    };
  }

  // el makes an element with text, or with children. Text is set with
  // textContent: what a host answers (names, reasons, users) is never
  // parsed as HTML, here or anywhere in these pages. The fleet aggregator
  // serves these same pages for every host (internal/fleet's Handler).
  function el(tag, content, cls) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (Array.isArray(content)) content.forEach((c) => e.append(c));
    else if (content !== undefined && content !== null) e.textContent = String(content);
    return e;
  }

  // rows fills a table's body; each row is an array of cells (text or
  // elements); an empty list says so.
  function rows(id, list, cols) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    if (list.length === 0) {
      const td = el("td", "none", "empty");
      td.colSpan = cols;
      body.append(el("tr", [td]));
      return;
    }
    for (const cells of list) {
      body.append(el("tr", cells.map((c) => (c instanceof Node ? el("td", [c]) : el("td", c, typeof c === "number" ? "n" : "")))));
    }
  }

  const fmt = (n) => Number(n).toLocaleString("en");

  // bytes writes n bytes in the unit that suits it.
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }

  // left says how long until t (an RFC 3339 time), or "permanent".
  function left(t) {
    if (!t) return "permanent";
    let s = Math.max(0, Math.round((Date.parse(t) - Date.now()) / 1000));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    return m + "m " + (s % 60) + "s";
  }

  const dark = () => matchMedia("(prefers-color-scheme: dark)").matches;

  // chart draws bar series over x (Unix seconds) into the element id,
  // replacing what was there.
  const charts = {};
  function chart(id, x, series, opts) {
    const box = document.getElementById(id);
    const ink = dark() ? "#c9d1d9" : "#24292f", grid = dark() ? "#30363d" : "#d0d7de";
    const axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const bars = uPlot.paths.bars({ size: [0.8, 40] });
    const o = {
      width: box.clientWidth || 600, height: 220,
      // Half a bar's room at each end, so the first and last bars show whole.
      scales: { x: { time: true, range: (u, min, max) => { const pad = opts && opts.hourly ? 1800 : 43200; return [min - pad, max + pad]; } } },
      // The y axis as wide as its longest label (millions, summed over a fleet).
      axes: [Object.assign({}, axis, opts && opts.hourly ? {} : { values: (u, ts) => ts.map((t) => new Date(t * 1000).toISOString().slice(5, 10)) }),
        Object.assign({}, axis, { size: (u, values) => 24 + 7 * Math.max(3, ...(values || []).map((v) => String(v).length)) })],
      series: [{}].concat(series.map((s) => ({ label: s.label, stroke: s.color, fill: s.color + "99", paths: bars, points: { show: false } }))),
      legend: { show: true },
    };
    if (charts[id]) charts[id].destroy();
    charts[id] = new uPlot(o, [x].concat(series.map((s) => s.data)), box);
  }
  addEventListener("resize", () => {
    for (const [id, c] of Object.entries(charts)) c.setSize({ width: document.getElementById(id).clientWidth, height: 220 });
  });

  function state(text, bad) {
    const s = document.getElementById("state");
    s.textContent = text;
    s.className = bad ? "bad" : "ok";
  }

  // every runs f now and every ms, showing its error.
  function every(ms, f) {
    const run = () => f().then(() => state("updated " + new Date().toLocaleTimeString()), (e) => state(e.message, true));
    run();
    setInterval(run, ms);
  }

  const secs = (iso) => Date.parse(iso) / 1000;
  const dateSecs = (d) => Date.parse(d + "T12:00:00Z") / 1000; // a day's bar, whatever the zone

  return { get, getOr, el, rows, fmt, bytes, left, chart, every, state, secs, dateSecs };
})();
