// The host dashboard: this daemon's days, hours, attackers, bans, logins.
"use strict";

(() => {
  const { get, el, rows, fmt, left, chart, every, secs, dateSecs } = SG;
  const red = "#d1242f", amber = "#bf8700";

  function figures(day, bans) {
    const box = document.getElementById("today");
    box.replaceChildren();
    const fig = (label, n, id) => {
      const d = el("div", [el("b", n === null ? "–" : fmt(n)), el("span", label)], "figure");
      d.id = id;
      box.append(d);
    };
    fig("failed today", day.failed, "fig-failed");
    fig("probes today", day.probes, "fig-probes");
    fig("addresses today", day.addresses, "fig-addresses");
    fig("logins today", day.logins, "fig-logins");
    fig("bans in force", bans ? bans.total : null, "fig-bans");
  }

  let lastBans = null; // the bans' figure until they load again
  let loaded = false; // the page was drawn once

  // refresh draws the counts first (on loopback they need no token), then
  // what needs the token: bans, logins, sessions (a 401 asks for it).
  async function refresh() {
    const month = await get("api/v1/summary?" + new URLSearchParams({ from: back(29), to: back(0) })).catch((e) => {
      // Under the fleet aggregator, a host that does not answer at all:
      // the aggregator's page of what it knows of it instead.
      if (e.status >= 500 && !loaded && location.pathname.startsWith("/hosts/")) location.replace("status" + location.hash);
      throw e;
    });
    const week = await get("api/v1/summary?" + new URLSearchParams({ from: back(6), to: back(0) }));
    const want = (location.hash.match(/day=(\d{4}-\d\d-\d\d)/) || [])[1];
    const days = want ? [await get("api/v1/days/" + want)] : [await get("api/v1/days/" + back(1)), await get("api/v1/days/" + back(0))];

    document.getElementById("host").textContent = month.host;
    document.getElementById("zone").textContent = month.timezone;
    document.title = month.host + " · sshguard-go";
    const today = month.days[month.days.length - 1];
    figures(today, lastBans);

    chart("perday", month.days.map((d) => dateSecs(d.date)), [
      { label: "failed", color: red, data: month.days.map((d) => d.failed) },
      { label: "probes", color: amber, data: month.days.map((d) => d.probes) },
    ]);
    let hours = days.flatMap((d) => d.hours);
    if (!want) {
      const now = Date.now() / 1000;
      hours = hours.filter((h) => secs(h.hour) > now - 48 * 3600 && secs(h.hour) <= now);
    }
    document.getElementById("hourly-title").replaceChildren("Attempts per hour ", el("small", want ? want : "last 48 hours"));
    chart("perhour", hours.map((h) => secs(h.hour)), [
      { label: "failed", color: red, data: hours.map((h) => h.failed) },
      { label: "probes", color: amber, data: hours.map((h) => h.probes) },
    ], { hourly: true });

    rows("addrs", week.top_addresses.map((a) => [a.ip, a.failed, a.probes, a.banned ? el("span", "banned", "tag bad") : ""]), 4);
    rows("users", week.top_users.map((u) => [u.user, u.failed]), 2);
    document.body.dataset.counts = "1";

    const bans = await SG.getOr("api/v1/bans?limit=100", { total: 0, bans: [] });
    const logins = await SG.getOr("api/v1/logins?limit=50", []);
    const active = await SG.getOr("api/v1/sessions?active=1&limit=100", []);
    const sessions = await SG.getOr("api/v1/sessions?limit=30", []);
    figures(today, (lastBans = bans));
    document.getElementById("bancount").textContent = fmt(bans.total) + " in force" +
      (bans.damaged ? ", " + fmt(bans.damaged) + " damaged records left out (sshguard-go list names them)" : "");
    rows("bans", bans.bans.map((b) => [b.prefix, left(b.expires), b.reason]), 3);
    rows("logins", logins.map((l) => [new Date(l.time).toLocaleString(), l.user, l.ip, el("span", l.severity + (l.tags.length ? " · " + l.tags.join(", ") : ""), "tag " + l.severity)]), 4);
    document.getElementById("activecount").textContent = active.length + " open";
    rows("active", active.map((s) => [s.user, s.ip, new Date(s.start).toLocaleString(), s.method]), 4);
    const bytes = (s) => s.transfers.reduce((n, t) => n + t.bytes_read + t.bytes_written, 0);
    const lasted = (s) => SG.left(new Date(Date.now() + (s.active ? Date.now() - Date.parse(s.start) : s.duration_s * 1000)).toISOString());
    rows("sessions", sessions.map((s) => [new Date(s.start).toLocaleString(), s.user, s.ip, lasted(s),
      s.active ? el("span", "open", "tag ok") : s.end_reason, SG.bytes(bytes(s)),
      s.commands.length + (s.commands_more || 0) + (s.commands_more ? " (" + s.commands_more + " dropped, " + SG.bytes(s.commands_bytes_more || 0) + ")" : "")]), 7);
    document.body.dataset.loaded = "1";
    loaded = true;
  }

  // back is the date n days before today, in the browser's zone (the
  // daemon answers in its own; a day apart at most around midnight).
  function back(n) {
    const d = new Date(Date.now() - n * 86400000);
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }

  // Under the fleet aggregator (/hosts/NAME/), the way back to the
  // fleet's page, on the day shown.
  function fleetLink() {
    if (!location.pathname.startsWith("/hosts/")) return;
    const want = (location.hash.match(/day=(\d{4}-\d\d-\d\d)/) || [])[1];
    const box = document.getElementById("fleet");
    box.querySelector("a").href = "../../" + (want ? "?date=" + want : "");
    box.hidden = false;
  }

  addEventListener("hashchange", () => {
    fleetLink();
    refresh().catch((e) => SG.state(e.message, true));
  });
  fleetLink();
  every(30000, refresh);
})();
