// The fleet dashboard: totals, the fleet's days, its top attackers, one
// row per host (sorted by a click on a header, filtered by the box).
// Every string a host gave is set as text (SG.el), never as HTML.
"use strict";

(() => {
  const { get, el, fmt, chart, every, dateSecs } = SG;
  const input = document.getElementById("date");
  const filter = document.getElementById("filter");
  const today = () => {
    const d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  };
  input.value = new URLSearchParams(location.search).get("date") || today();
  input.addEventListener("change", () => {
    history.replaceState(null, "", "?date=" + input.value);
    refresh().catch((e) => SG.state(e.message, true));
  });

  // ago says how long ago t (RFC 3339) was.
  function ago(t) {
    if (!t) return "never";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  // A host's page: its dashboard when it answered, else what is known of it.
  const hostHref = (h, date) => "hosts/" + encodeURIComponent(h.name) + "/" + (h.ok ? "" : "status") + "#day=" + date;

  // The hosts' rows and their sort keys; the sort and the filter outlive
  // a refresh.
  let rowsOf = []; // [{tr, key: {name, state, failed, ...}, text}]
  let sortKey = "name", sortDir = 1;

  function apply() {
    const q = filter.value.trim().toLowerCase();
    const sorted = rowsOf.slice().sort((a, b) => {
      const x = a.key[sortKey], y = b.key[sortKey];
      const c = typeof x === "string" ? x.localeCompare(y) : x - y;
      return sortDir * c || a.key.name.localeCompare(b.key.name);
    });
    let shown = 0;
    for (const r of sorted) {
      r.tr.hidden = q !== "" && !r.text.includes(q);
      if (!r.tr.hidden) shown++;
    }
    document.querySelector("#hosts tbody").replaceChildren(...sorted.map((r) => r.tr));
    document.getElementById("shown").textContent = (shown === rowsOf.length ? fmt(shown) : fmt(shown) + " of " + fmt(rowsOf.length)) + " hosts · click one for its page";
    for (const th of document.querySelectorAll("#hosts th[data-key]")) {
      if (th.dataset.key === sortKey) th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
  }
  for (const th of document.querySelectorAll("#hosts th[data-key]")) {
    th.querySelector("button").addEventListener("click", () => {
      const k = th.dataset.key;
      if (k === sortKey) sortDir = -sortDir;
      else {
        sortKey = k;
        sortDir = k === "name" || k === "state" ? 1 : -1; // numbers: the most first
      }
      apply();
    });
  }
  filter.addEventListener("input", apply);

  function attackers(s) {
    const body = document.querySelector("#attackers tbody");
    body.replaceChildren();
    if (s.attackers.length === 0) {
      const td = el("td", "none: no host lists an address", "empty");
      td.colSpan = 5;
      body.append(el("tr", [td]));
      return;
    }
    for (const a of s.attackers) {
      const where = el("td", [], "where");
      if (a.banned === 0) where.append(el("span", "nowhere", "muted"));
      a.banned_on.forEach((name, i) => {
        if (i) where.append(", ");
        const link = el("a", name);
        link.href = "hosts/" + encodeURIComponent(name) + "/#day=" + s.date;
        where.append(link);
      });
      if (a.banned > a.banned_on.length) where.append(" and " + fmt(a.banned - a.banned_on.length) + " more");
      const cell = (label, v, cls) => { const td = el("td", v, cls); td.dataset.label = label; return td; };
      where.dataset.label = "Banned on";
      const tr = el("tr", [cell("Address", a.ip, "ip"), cell("Hosts", fmt(a.hosts), "n"), cell("Failed", fmt(a.failed), "n"), cell("Probes", fmt(a.probes), "n"), where]);
      tr.dataset.ip = a.ip;
      body.append(tr);
    }
  }

  async function refresh() {
    const s = await get("api/v1/fleet/summary?date=" + encodeURIComponent(input.value));
    document.getElementById("count").textContent = s.answered + " of " + s.hosts.length + " hosts answered";
    const box = document.getElementById("totals");
    box.replaceChildren();
    for (const [id, label, n] of [["failed", "failed", s.total.failed], ["probes", "probes", s.total.probes], ["addresses", "addresses (per host)", s.total.addresses],
      ["bans", "bans started", s.total.bans], ["logins", "logins", s.total.logins], ["down", "hosts down", s.failed]]) {
      const d = el("div", [el("b", fmt(n)), el("span", label)], "figure" + (id === "down" && n > 0 ? " bad" : ""));
      d.id = "total-" + id;
      box.append(d);
    }
    chart("perday", s.days.map((d) => dateSecs(d.date)), [
      { label: "failed", color: "#d1242f", data: s.days.map((d) => d.failed) },
      { label: "probes", color: "#bf8700", data: s.days.map((d) => d.probes) },
    ]);
    attackers(s);
    const labels = ["Host", "State", "Failed", "Probes", "Addresses", "Bans", "Logins", "Last summary"];
    rowsOf = s.hosts.map((h) => {
      const d = h.day || {};
      const state = h.ok ? el("span", "up", "tag ok") : el("span", "down", "tag bad");
      const stateCell = el("td", h.ok ? [state] : [state, " ", el("span", h.error, "error")], "state");
      const num = (n) => el("td", h.ok ? fmt(n) : "–", "n");
      const when = el("td", ago(h.updated), "n");
      if (h.updated) when.title = new Date(h.updated).toLocaleString() + (h.latency_ms ? " · answered in " + h.latency_ms + " ms" : "");
      const a = el("a", h.name);
      a.href = hostHref(h, s.date);
      const tr = el("tr", [el("td", [a], "name"), stateCell, num(d.failed), num(d.probes), num(d.addresses), num(d.bans), num(d.logins), when], "host" + (h.ok ? "" : " down"));
      tr.querySelectorAll("td").forEach((td, i) => { td.dataset.label = labels[i]; });
      tr.dataset.host = h.name;
      tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") location.href = a.href; });
      const v = (n) => (h.ok ? n : -1);
      return {
        tr, text: (h.name + " " + (h.ok ? "up" : "down " + h.error)).toLowerCase(),
        key: { name: h.name, state: (h.ok ? "0 " : "1 ") + h.name, failed: v(d.failed), probes: v(d.probes), addresses: v(d.addresses),
          bans: v(d.bans), logins: v(d.logins), updated: h.updated ? Date.parse(h.updated) : 0 },
      };
    });
    apply();
    document.body.dataset.loaded = "1";
  }

  every(30000, refresh);
})();
