// statewall report: lays out the embedded model (no request leaves the page).
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const N = D.names;
  const SVG = "http://www.w3.org/2000/svg";
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else if (k === "cls") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined)
      e.append(kid instanceof Node ? kid : String(kid));
    return e;
  }
  function sv(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else if (v !== null && v !== undefined) e.setAttribute(k, v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined)
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return e;
  }
  const ctstate = (code) => (code < 0 ? "-" : N.ctstates[String(code)] || "?");
  const verdict = (code) => N.verdicts[code];
  const tcpName = (code) => (code < 0 ? "-" : N.tcp[code]);
  const isDrop = (code) => verdict(code) === "DROP" || verdict(code) === "REJECT";
  const rulesById = new Map(D.rules.map((r) => [r.id, r]));
  const connsById = new Map(D.connections.map((c) => [c.conn, c]));
  const ruleLabel = (id) => {
    if (id < 0) return "no rule (conntrack, the IP layer or a helper)";
    const r = rulesById.get(id);
    if (!r) return "rule " + id;
    const v = D.rules.some((o) => o.family !== r.family) ? "IPv" + r.family + " " : "";
    return v + r.table + " " + r.chain + " " + (r.number ? "#" + r.number : "policy");
  };
  const ends = (f) => {
    if (!f) return "?";
    const a = (x) => (x.includes(":") ? "[" + x + "]" : x);
    return f.sport !== undefined ? a(f.src) + ":" + f.sport + " → " + a(f.dst) + ":" + f.dport
      : a(f.src) + " → " + a(f.dst);
  };
  const connLabel = (c) => (c.orig ? c.proto + " " + ends(c.orig)
    : c.conn ? "connection " + c.conn + " (never confirmed)" : "packets outside any connection");

  // ---- header ----
  const m = D.meta;
  const metaParts = [m.capture, fmt(m.packets) + " packets", fmt(m.connections_seen) + " connections seen",
    m.rules.length ? "rules: " + m.rules.join(", ") : "no ruleset", "statewall " + m.version];
  if (m.limit) metaParts.push("--limit " + m.limit);
  if (m.filter) metaParts.push(m.filter + ": the details hold " + fmt(m.selected) + " of " + fmt(m.packets) + " packets");
  $("meta").textContent = metaParts.join(" · ");
  for (const c of m.capped) $("capped").append(el("li", {}, "capped: " + c));
  for (const c of m.inexact || []) $("capped").append(el("li", {}, "inexact (--inexact): " + c));

  // ---- overview ----
  function card(title, id, ...body) {
    return el("div", { cls: "card", id }, el("h3", {}, title), ...body);
  }
  function bars(rows, opts) {
    const max = Math.max(1, ...rows.map((r) => r[1]));
    if (!rows.length) return el("p", { cls: "note" }, opts.empty || "none");
    return el("div", {}, rows.map(([label, n, extra]) => el("div", { cls: "bar", "data-label": label, "data-count": n },
      el("span", { cls: "label" }, label),
      el("span", { cls: "track" }, el("span", { cls: "fill" + (opts.drop ? " drop" : ""), style: "display:block;width:" + (100 * n / max).toFixed(1) + "%" })),
      el("span", { cls: "num" }, fmt(n)), extra || null)));
  }
  function stateVerdict() {
    const states = [...new Set(D.state_verdict.map((r) => ctstate(r[0])))];
    const verdicts = [...new Set(D.state_verdict.map((r) => verdict(r[1])))];
    const cell = new Map();
    for (const [c, v, n] of D.state_verdict) {
      const k = ctstate(c) + "|" + verdict(v);
      cell.set(k, (cell.get(k) || 0) + n);
    }
    return el("div", { cls: "scroll" }, el("table", { id: "state-verdict" },
      el("thead", {}, el("tr", {}, el("th", {}, "ctstate \\ verdict"), verdicts.map((v) => el("th", { cls: "n" }, v)))),
      el("tbody", {}, states.map((s) => el("tr", {}, el("th", {}, s), verdicts.map((v) => {
        const n = cell.get(s + "|" + v) || 0;
        return el("td", { cls: "n" + (n && (v === "DROP" || v === "REJECT") ? " drop" : ""), "data-state": s, "data-verdict": v, "data-count": n }, n ? fmt(n) : "·");
      }))))));
  }
  function tableChart() {
    const t = D.table, pts = t.curve;
    if (!pts.length) return el("p", { cls: "note" }, "no entry was confirmed");
    const W = 560, H = 180, L = 48, B = 24;
    const peak = Math.max(...pts.map((p) => p[1]));
    const maxIn = t.max <= peak * 1.5;
    const top = maxIn ? t.max * 1.05 : peak * 1.2 || 1;
    const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1e-6);
    const x = (s) => L + (W - L - 8) * (s - t0) / (t1 - t0);
    const y = (n) => H - B - (H - B - 10) * n / top;
    let d = "";
    pts.forEach((p, i) => { d += (i ? " L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1); if (i + 1 < pts.length) d += " L" + x(pts[i + 1][0]).toFixed(1) + " " + y(p[1]).toFixed(1); });
    const maxY = maxIn ? y(t.max) : 6;
    return el("div", { cls: "scroll" }, sv("svg", { id: "table-chart", viewBox: "0 0 " + W + " " + H, width: "100%", role: "img", "aria-label": "conntrack table size over time, peak " + peak, "data-peak": peak, "data-max": t.max, style: "max-width:" + W + "px" },
      sv("line", { x1: L, x2: W - 8, y1: H - B, y2: H - B, stroke: "#999" }),
      sv("line", { x1: L, x2: L, y1: 6, y2: H - B, stroke: "#999" }),
      sv("text", { x: L - 4, y: y(peak) + 4, "text-anchor": "end", "font-size": 11 }, fmt(peak)),
      sv("text", { x: L - 4, y: H - B + 4, "text-anchor": "end", "font-size": 11 }, "0"),
      sv("text", { x: W - 8, y: H - 6, "text-anchor": "end", "font-size": 11 }, (t1 - t0).toFixed(3) + " s"),
      sv("line", { x1: L, x2: W - 8, y1: maxY, y2: maxY, stroke: "#b3261e", "stroke-dasharray": "6 4" }),
      sv("text", { x: W - 10, y: maxY + 14, "text-anchor": "end", "font-size": 11, fill: "#b3261e" }, "nf_conntrack_max " + fmt(t.max) + (maxIn ? "" : " (far above the curve)")),
      sv("path", { d, fill: "none", stroke: "#0072b2", "stroke-width": 2 })));
  }
  const byProto = () => el("div", { cls: "scroll" }, el("table", { id: "conns-by-state" },
    el("thead", {}, el("tr", {}, el("th", {}, "protocol"), el("th", {}, "final state"), el("th", { cls: "n" }, "connections"))),
    el("tbody", {}, D.conns_by_proto_state.map(([p, s, n]) => el("tr", {}, el("td", {}, p), el("td", {}, s), el("td", { cls: "n", "data-count": n }, fmt(n)))))));
  const e = D.expectations;
  $("overview-grid").append(
    card("Packets by ctstate and verdict", "card-state-verdict", stateVerdict()),
    card("Drops by rule", "drops-by-rule", bars(D.drop_rules.map(([r, n]) => [ruleLabel(r), n]), { drop: true, empty: "no packet was dropped" })),
    card("Drops by reason", "drops-by-reason", bars(D.drop_reasons.map(([r, n]) => [r === null ? "other reasons" : r, n]), { drop: true, empty: "no packet was dropped" })),
    card("INVALID reasons", "invalid-reasons", bars(D.invalid, { empty: "no packet was INVALID" })),
    card("Connections by protocol and final state", "card-conns", byProto()),
    card("Conntrack table size", "card-table", tableChart(), el("p", { cls: "note" }, fmt(D.table.confirmed) + " entries confirmed in all")),
    card("Expectations", "expectations", el("table", {}, el("tbody", {},
      [["created", e.created], ["used (a connection arrived as expected)", e.used], ["deleted", e.deleted], ["RELATED connections", e.related]]
        .map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { cls: "n", "data-key": k.split(" ")[0], "data-count": v }, fmt(v))))))));

  // ---- ruleset ----
  const topDrop = D.drop_rules.find(([r]) => r >= 0);
  const mostId = topDrop ? topDrop[0] : null;
  function ruleRows(rules, opts) {
    let last = "";
    const rows = [];
    for (const r of rules) {
      const head = "IPv" + r.family + " " + r.table + " " + r.chain;
      if (head !== last) { rows.push(el("tr", {}, el("th", { colspan: 5 }, head))); last = head; }
      const dead = r.number > 0 && r.packets === 0;
      const most = opts.most !== undefined && r.id === opts.most;
      const extra = opts.extra ? opts.extra(r) : null;
      rows.push(el("tr", { cls: "rule" + (dead ? " dead" : "") + (most ? " most" : ""), "data-rule": r.id, "data-packets": r.packets, tabindex: opts.click ? 0 : null,
        on: opts.click ? { click: () => opts.click(r), keydown: (ev) => { if (ev.key === "Enter") opts.click(r); } } : {} },
        el("td", { cls: "n" }, r.number ? "#" + r.number : "policy"),
        el("td", { cls: "text" }, r.text, dead ? el("span", { cls: "tag dead" }, "never matched") : null, most ? el("span", { cls: "tag most" }, "dropped most") : null, extra),
        el("td", { cls: "n", "data-count": r.packets }, fmt(r.packets)),
        el("td", { cls: "n" }, fmt(r.bytes)),
        el("td", { cls: "n" }, r.decided === undefined ? "" : fmt(r.decided))));
    }
    return el("div", { cls: "scroll" }, el("table", { cls: "rules" },
      el("thead", {}, el("tr", {}, el("th", {}, "rule"), el("th", {}, "text"), el("th", { cls: "n" }, "packets"), el("th", { cls: "n" }, "bytes"), el("th", { cls: "n" }, opts.click ? "decided" : ""))),
      el("tbody", {}, rows)));
  }
  function showRule(r) {
    const p = $("rule-conns");
    p.hidden = false;
    p.replaceChildren(el("h3", {}, ruleLabel(r.id) + ": " + fmt(r.conns_total) + " connection(s) decided, " + fmt(r.decided) + " packet(s)"),
      r.conns_total > r.conns.length ? el("p", { cls: "note" }, "the first " + r.conns.length + " are listed") : null,
      r.conns.length ? el("ul", { id: "rule-conn-list" }, r.conns.map((c) => el("li", { "data-conn": c },
        el("button", { cls: "link", on: { click: () => openConn(c) } }, "#" + c + " " + (connsById.has(c) ? connLabel(connsById.get(c)) : ""))))) : el("p", { cls: "note" }, "no connection: the packets it decided belonged to none"));
    p.scrollIntoView({ block: "nearest" });
  }
  if (D.rules.length) {
    $("rules-body").append(el("p", { cls: "note" }, "Counters as iptables -L -v -x counts them; 'decided' counts the packets whose verdict the rule gave. Click a rule for the connections it decided."),
      ruleRows(D.rules, { click: showRule, most: mostId }));
  } else $("rules-body").append(el("p", { cls: "note" }, "No ruleset was given: every packet passed the chains' ACCEPT policies."));

  // ---- connections ----
  const searchText = new Map(D.connections.map((c) => [c.conn, [c.conn, connLabel(c), c.reply ? ends(c.reply) : "", c.state, c.end, c.helper, c.master_helper, Object.keys(c.verdicts).join(" "), c.status.join(" "), c.drops ? "drop" : ""].join(" ").toLowerCase()]));
  const LIST = 300;
  function listConns() {
    const q = $("conn-search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const hits = D.connections.filter((c) => q.every((w) => searchText.get(c.conn).includes(w)));
    $("conn-count").textContent = fmt(hits.length) + " of " + fmt(D.connections.length) + " connections" + (hits.length > LIST ? ", the first " + LIST + " shown: refine the search" : "");
    $("conn-list").replaceChildren(...hits.slice(0, LIST).map((c) => el("tr", { cls: "conn", "data-conn": c.conn, tabindex: 0, on: { click: () => openConn(c.conn), keydown: (ev) => { if (ev.key === "Enter") openConn(c.conn); } } },
      el("td", { cls: "n" }, c.conn || "—"), el("td", {}, c.proto || ""), el("td", { cls: "text" }, connLabel(c)),
      el("td", {}, c.state || ""), el("td", { cls: "n" }, fmt(c.shown)), el("td", { cls: "n" + (c.drops ? " drop" : "") }, fmt(c.drops)),
      el("td", {}, Object.entries(c.verdicts).map(([k, v]) => k + " " + v).join(", ")),
      el("td", { cls: "n" }, c.start === null ? "" : c.start.toFixed(3)),
      el("td", {}, [c.end || "in the table", c.master ? " · RELATED to #" + c.master : "", c.helper ? " · helper " + c.helper : ""].join("")))));
  }
  $("conn-search").addEventListener("input", listConns);
  listConns();

  // ---- the ladder ----
  const NAT = /(?:MASQUERADE|SNAT|DNAT|REDIRECT|NETMAP|reply of [SD]NAT) [^;]*→[^;]*/g;
  const children = new Map();
  for (const c of D.connections) if (c.master) {
    if (!children.has(c.master)) children.set(c.master, []);
    children.get(c.master).push(c.conn);
  }
  const announcedIn = (child) => {
    const rows = D.packets[String(child)];
    const hit = rows && rows.length && /in packet #(\d+)/.exec(rows[0][7]);
    return hit ? Number(hit[1]) : null;
  };
  function openConn(id, frame) {
    for (const tr of document.querySelectorAll("tr.conn.selected")) tr.classList.remove("selected");
    const tr = document.querySelector('tr.conn[data-conn="' + id + '"]');
    if (tr) tr.classList.add("selected");
    const c = connsById.get(id) || { conn: id, status: [], verdicts: {}, history: [] };
    const rows = D.packets[String(id)] || [];
    const p = $("ladder-panel");
    p.hidden = false;
    const kids = children.get(id) || [];
    const byFrame = new Map();
    for (const k of kids) { const f = announcedIn(k); if (f !== null) { if (!byFrame.has(f)) byFrame.set(f, []); byFrame.get(f).push(k); } }
    const head = [el("h3", {}, "Connection " + (id || "—") + ": " + connLabel(c))];
    const facts = [];
    if (c.reply) facts.push("reply direction " + ends(c.reply));
    if (c.state) facts.push("final state " + c.state);
    if (c.end) facts.push("ended: " + c.end);
    if (c.helper) facts.push("helper " + c.helper);
    if (c.status.length) facts.push(c.status.join(","));
    head.push(el("p", { cls: "note" }, facts.join(" · ")));
    if (c.master) {
      const f = announcedIn(id);
      head.push(el("p", { cls: "related" }, "RELATED: expected by ", el("button", { cls: "link", "data-master": c.master, on: { click: () => openConn(c.master, f) } }, "connection #" + c.master + (c.master_helper ? " (" + c.master_helper + ")" : "")),
        f !== null ? [", announced in packet ", el("button", { cls: "link", "data-announce": f, on: { click: () => openConn(c.master, f) } }, "#" + f)] : null));
    }
    if (kids.length) head.push(el("p", {}, "Expected connections: ", kids.map((k) => el("button", { cls: "link", "data-child": k, on: { click: () => openConn(k) } }, "#" + k + " ")), "(RELATED children)"));
    const total = c.shown || rows.length;
    if (rows.length < total) head.push(el("p", { cls: "capped" }, "capped: the first " + rows.length + " of " + fmt(total) + " packets are drawn"));
    p.replaceChildren(...head, el("div", { cls: "ladder-box" }, ladder(c, rows, byFrame, frame)));
    p.scrollIntoView({ block: "nearest" });
  }
  function ladder(c, rows, byFrame, focus) {
    const W = 760, L = 150, R = 610, TOP = 44, STEP = 58;
    let yy = TOP;
    const g = [];
    const left = c.orig ? (c.orig.src + (c.orig.sport !== undefined ? ":" + c.orig.sport : "")) : "original";
    const right = c.orig ? (c.orig.dst + (c.orig.dport !== undefined ? ":" + c.orig.dport : "")) : "reply";
    let prevTcp = -1;
    rows.forEach((row, i) => {
      const [frame, t, dir, v, ct, tcp, rule, reason, summary] = row;
      if (tcp >= 0 && tcp !== prevTcp) {
        g.push(sv("g", { class: "tcp-change" }, sv("rect", { x: (L + R) / 2 - 70, y: yy - 4, width: 140, height: 18, rx: 9, fill: "#e0f2f1", stroke: "#00695c" }),
          sv("text", { x: (L + R) / 2, y: yy + 9, "text-anchor": "middle", "font-size": 11, fill: "#00695c" }, (prevTcp >= 0 ? tcpName(prevTcp) : "NONE") + " → " + tcpName(tcp))));
        yy += 22;
        prevTcp = tcp;
      }
      const drop = isDrop(v);
      const colour = drop ? "#b3261e" : "#0072b2";
      const fromX = dir === 1 ? R : L, toX = dir === 1 ? L : R;
      const endX = drop ? (fromX + toX) / 2 : toX;
      const y = yy + 26;
      const flags = summary.replace(/^\S+ > \S+ /, "");
      const nat = reason.match(NAT);
      const kids = byFrame.get(frame) || [];
      const a = sv("g", { class: "arrow" + (drop ? " dropped" : "") + (frame === focus ? " focus" : ""), "data-frame": frame, "data-verdict": verdict(v), "data-ctstate": ctstate(ct) },
        sv("title", {}, "#" + frame + " " + summary + "\n" + ctstate(ct) + " " + verdict(v) + (rule >= 0 ? " by " + ruleLabel(rule) : "") + "\n" + reason),
        frame === focus ? sv("rect", { x: 4, y: yy - 2, width: W - 8, height: STEP - 6, fill: "#fff3c4" }) : null,
        sv("text", { x: 8, y: y + 4, "font-size": 11 }, "#" + frame),
        sv("text", { x: 8, y: y + 17, "font-size": 10, fill: "#555" }, "+" + t.toFixed(6)),
        sv("line", { x1: fromX, x2: endX, y1: y, y2: y, stroke: colour, "stroke-width": 2, "stroke-dasharray": dir < 0 ? "4 3" : null }),
        drop ? sv("path", { d: "M" + (endX - 6) + " " + (y - 6) + " L" + (endX + 6) + " " + (y + 6) + " M" + (endX + 6) + " " + (y - 6) + " L" + (endX - 6) + " " + (y + 6), stroke: colour, "stroke-width": 3 })
          : sv("path", { d: "M" + toX + " " + y + " l" + (dir === 1 ? 9 : -9) + " -5 v10 z", fill: colour }),
        sv("text", { x: (L + R) / 2, y: y - 6, "text-anchor": "middle", "font-size": 11, class: "mono" }, flags.length > 80 ? flags.slice(0, 79) + "…" : flags),
        sv("text", { x: (L + R) / 2, y: y + 14, "text-anchor": "middle", "font-size": 11, fill: colour, "font-weight": drop ? 700 : 400 },
          ctstate(ct) + " · " + verdict(v) + (rule >= 0 ? " by " + ruleLabel(rule) : "") + (drop ? " — " + reason.slice(0, 70) : "")),
        nat ? sv("text", { x: dir === 1 ? L - 4 : R + 4, y: y + 26, "text-anchor": dir === 1 ? "end" : "start", "font-size": 10, fill: "#6a3d9a" }, "NAT: " + nat.join("; ").slice(0, 60)) : null,
        kids.length ? sv("text", { x: dir === 1 ? L - 4 : R + 4, y: y - 8, "text-anchor": dir === 1 ? "end" : "start", "font-size": 10, fill: "#8a5a00", class: "announces", "data-children": kids.join(" ") }, "expects → #" + kids.join(", #")) : null);
      g.push(a);
      yy += STEP;
    });
    const H = yy + 10;
    return sv("svg", { class: "ladder", id: "ladder", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "ladder diagram of connection " + c.conn + ", " + rows.length + " packets", "data-arrows": rows.length },
      sv("text", { x: L, y: 16, "text-anchor": "middle", "font-size": 12, "font-weight": 700 }, left),
      sv("text", { x: R, y: 16, "text-anchor": "middle", "font-size": 12, "font-weight": 700 }, right),
      sv("line", { x1: L, x2: L, y1: 24, y2: H, stroke: "#999" }), sv("line", { x1: R, x2: R, y1: 24, y2: H, stroke: "#999" }),
      g);
  }

  // ---- the TCP state machine ----
  const POS = { NONE: [60, 50], SYN_SENT: [220, 50], SYN_SENT2: [400, 50], SYN_RECV: [220, 170], ESTABLISHED: [400, 170],
    FIN_WAIT: [580, 110], CLOSE_WAIT: [580, 260], LAST_ACK: [740, 170], TIME_WAIT: [740, 50], CLOSE: [400, 280] };
  function tcpGraph() {
    const W = 820, H = 320;
    const edges = D.tcp.map(([a, b, n, frames]) => {
      const [x1, y1] = POS[N.tcp[a]], [x2, y2] = POS[N.tcp[b]];
      const mx = (x1 + x2) / 2, my = (y1 + y2) / 2, dx = x2 - x1, dy = y2 - y1, len = Math.hypot(dx, dy) || 1;
      const bend = 28, cx = mx - dy / len * bend, cy = my + dx / len * bend;
      const w = 1.5 + Math.log10(n + 1) * 1.5;
      return sv("g", { class: "transition", tabindex: 0, "data-from": N.tcp[a], "data-to": N.tcp[b], "data-count": n,
        on: { click: () => showTransition(a, b, n, frames), keydown: (ev) => { if (ev.key === "Enter") showTransition(a, b, n, frames); } } },
        sv("title", {}, N.tcp[a] + " → " + N.tcp[b] + ": " + n),
        sv("path", { d: "M" + x1 + " " + y1 + " Q" + cx + " " + cy + " " + x2 + " " + y2, fill: "none", stroke: "#0072b2", "stroke-width": w.toFixed(1), "marker-end": "url(#arrowhead)" }),
        sv("path", { d: "M" + x1 + " " + y1 + " Q" + cx + " " + cy + " " + x2 + " " + y2, fill: "none", stroke: "transparent", "stroke-width": 14 }),
        sv("rect", { x: (mx + cx) / 2 - 22, y: (my + cy) / 2 - 9, width: 44, height: 16, rx: 4, fill: "#fff", stroke: "#ccc" }),
        sv("text", { x: (mx + cx) / 2, y: (my + cy) / 2 + 3, "text-anchor": "middle", "font-size": 11 }, fmt(n)));
    });
    const used = new Set(D.tcp.flatMap(([a, b]) => [N.tcp[a], N.tcp[b]]));
    const nodes = Object.entries(POS).map(([name, [x, y]]) => sv("g", { class: "state", "data-state": name },
      sv("rect", { x: x - 52, y: y - 14, width: 104, height: 28, rx: 14, fill: used.has(name) ? "#e0f2f1" : "#f5f5f5", stroke: used.has(name) ? "#00695c" : "#bbb" }),
      sv("text", { x, y: y + 4, "text-anchor": "middle", "font-size": 11, fill: used.has(name) ? "#00332c" : "#767676" }, name)));
    return sv("svg", { id: "tcp-graph", viewBox: "0 0 " + W + " " + H, width: "100%", style: "min-width:560px;max-width:" + W + "px", role: "img", "aria-label": "TCP conntrack state machine with " + D.tcp.length + " transitions taken" },
      sv("defs", {}, sv("marker", { id: "arrowhead", viewBox: "0 0 10 10", refX: 30, refY: 5, markerWidth: 5, markerHeight: 5, orient: "auto-start-reverse" }, sv("path", { d: "M0 0 L10 5 L0 10 z", fill: "#0072b2" }))),
      edges, nodes);
  }
  function showTransition(a, b, n, frames) {
    const p = $("transition-packets");
    p.hidden = false;
    p.replaceChildren(el("h3", {}, N.tcp[a] + " → " + N.tcp[b] + ": " + fmt(n) + " packet(s)"),
      n > frames.length ? el("p", { cls: "note" }, "the first " + frames.length + " are listed") : null,
      el("ul", { id: "transition-list" }, frames.map((f) => el("li", { "data-frame": f }, "packet #" + f))));
  }
  if (D.tcp.length) $("tcp-graph-box").append(tcpGraph());
  else $("tcp-graph-box").append(el("p", { cls: "note" }, "no TCP connection changed state"));

  // ---- ruleset B ----
  if (D.diff) {
    const d = D.diff;
    $("diff").hidden = false;
    $("nav-diff").hidden = false;
    const inA = new Map(), inB = new Map();
    for (const ch of d.changes) {
      inA.set(ch.a, (inA.get(ch.a) || 0) + ch.packets);
      inB.set(ch.b, (inB.get(ch.b) || 0) + ch.packets);
    }
    const badge = (m) => (r) => (m.has(r.id) ? el("span", { cls: "tag most", "data-changed": m.get(r.id) }, fmt(m.get(r.id)) + " packet(s) change") : null);
    $("diff-body").append(el("p", {}, d.summary),
      el("div", { cls: "sides" }, el("div", { id: "side-a" }, el("h3", {}, "A: " + (m.rules.join(", ") || "no ruleset")), ruleRows(D.rules, { extra: badge(inA) })),
        el("div", { id: "side-b" }, el("h3", {}, "B"), ruleRows(d.rules_b, { extra: badge(inB) }))),
      el("h3", {}, "Changes, by rule"),
      d.changes.length ? el("ol", { id: "changes" }, d.changes.map((ch) => el("li", { "data-packets": ch.packets },
        el("span", { cls: "change" }, ch.change), ": " + fmt(ch.packets) + " packet(s), " + fmt(ch.connections) + " connection(s)",
        el("ul", {}, ch.examples.map(([f, s, a, b]) => el("li", { cls: "text" }, "#" + f + " " + s, el("br"), "A: " + a, el("br"), "B: " + b)))))) : el("p", {}, "No packet changes."));
  }

  // Ready: the page is laid out and painted (the frame after this script's, which
  // built it). The value is the milliseconds since navigation began (bench/run.py).
  requestAnimationFrame(() => setTimeout(() => {
    document.documentElement.dataset.ready = performance.now().toFixed(0);
  }, 0));
})();
