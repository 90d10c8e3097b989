// The fleet dashboard: totals, the fleet's days, one row per host.
"use strict";

(() => {
  const { get, el, fmt, chart, every, dateSecs } = SG;
  const input = document.getElementById("date");
  const today = () => {
    const d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  };
  input.value = new URLSearchParams(location.search).get("date") || today();
  input.addEventListener("change", () => {
    history.replaceState(null, "", "?date=" + input.value);
    refresh().catch((e) => SG.state(e.message, true));
  });

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
    const body = document.querySelector("#hosts tbody");
    body.replaceChildren();
    for (const h of s.hosts) {
      const d = h.day || {};
      const state = h.ok ? el("span", "up", "tag ok") : el("span", "down: " + h.error, "tag bad");
      const num = (n) => el("td", h.ok ? fmt(n) : "–", "n");
      const tr = el("tr", [el("td", [el("a", h.name)]), el("td", [state]), num(d.failed), num(d.probes), num(d.addresses), num(d.bans), num(d.logins), el("td", String(h.latency_ms), "n")], "host" + (h.ok ? "" : " down"));
      tr.dataset.host = h.name;
      const a = tr.querySelector("a");
      a.href = "hosts/" + encodeURIComponent(h.name) + "/#day=" + s.date;
      tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") location.href = a.href; });
      body.append(tr);
    }
    document.body.dataset.loaded = "1";
  }

  every(30000, refresh);
})();
