// A host's page on the fleet aggregator when its own dashboard cannot be
// shown (the host is down, or the view is built from the NATS bucket):
// what the aggregator knows of it, from /api/v1/fleet/hosts/NAME. Every
// string the host gave is set as text (SG.el), never as HTML.
"use strict";

(() => {
  const { get, el, fmt, chart, every, dateSecs } = SG;
  const name = decodeURIComponent(location.pathname.split("/")[2] || "");
  const want = (location.hash.match(/day=(\d{4}-\d\d-\d\d)/) || [])[1];
  document.querySelector("#fleet a").href = "../../" + (want ? "?date=" + want : "");
  document.getElementById("host").textContent = name;
  document.title = name + " · sshguard-go fleet";
  const today = () => {
    const d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  };

  async function refresh() {
    const h = await get("../../api/v1/fleet/hosts/" + encodeURIComponent(name));
    document.getElementById("source").textContent = h.source === "nats" ? "from its summaries in NATS" : "from its API";
    const up = document.getElementById("up");
    up.replaceChildren(h.ok ? el("span", "up", "tag ok") : el("span", "unreachable", "tag bad"),
      " ", h.ok ? "it answers" : h.source === "nats" ? "its summaries have stopped" : "it does not answer the aggregator");
    const when = h.updated ? new Date(h.updated) : null;
    document.getElementById("updated").textContent = when ? "last summary " + when.toLocaleString() : "no summary from it yet";
    const why = document.getElementById("why");
    why.hidden = h.ok;
    why.replaceChildren(el("b", "Why: "), el("span", h.error, "error"));
    document.getElementById("live").hidden = !h.live || !h.ok; // down, its dashboard would come back here
    document.getElementById("health").className = "card wide " + (h.ok ? "" : "down");

    // Nothing known of its days: it has not answered since the aggregator started.
    for (const id of ["today", "days", "top"]) document.getElementById(id).hidden = h.days.length === 0;
    document.getElementById("nothing").hidden = h.days.length > 0;
    const last = h.day || h.days[h.days.length - 1] || {};
    const box = document.getElementById("today");
    box.replaceChildren();
    for (const [id, label, n] of [["failed", "failed", last.failed], ["probes", "probes", last.probes], ["addresses", "addresses", last.addresses],
      ["bans", "bans started", last.bans], ["logins", "logins", last.logins]]) {
      const d = el("div", [el("b", n === undefined ? "–" : fmt(n)), el("span", label + (!last.date ? "" : last.date === today() ? " today" : " on " + last.date))], "figure");
      d.id = "fig-" + id;
      box.append(d);
    }
    chart("perday", h.days.map((d) => dateSecs(d.date)), [
      { label: "failed", color: "#d1242f", data: h.days.map((d) => d.failed) },
      { label: "probes", color: "#bf8700", data: h.days.map((d) => d.probes) },
    ]);
    const body = document.querySelector("#addrs tbody");
    body.replaceChildren();
    if (h.top_addresses.length === 0) {
      const td = el("td", "none", "empty");
      td.colSpan = 4;
      body.append(el("tr", [td]));
    }
    for (const a of h.top_addresses) {
      const cells = [["Address", a.ip, "ip"], ["Failed", fmt(a.failed), "n"], ["Probes", fmt(a.probes), "n"], ["Banned here", a.banned ? "banned" : "no", a.banned ? "bad" : "muted"]];
      body.append(el("tr", cells.map(([label, v, cls]) => { const td = el("td", v, cls); td.dataset.label = label; return td; })));
    }
    document.body.dataset.loaded = "1";
  }

  every(30000, refresh);
})();
