// Live job progress: polls the job's API object every second and redraws one row per
// item (layer) with its phase, a progress bar, bytes and speed. Survives reloads and
// second tabs, since the state lives on the server.
(function () {
  const root = document.querySelector("[data-job-url]");
  if (!root) return;
  const url = root.dataset.jobUrl;
  const rows = root.querySelector("tbody");
  const state = root.querySelector("[data-state]");
  const log = root.querySelector("[data-log]");
  const error = root.querySelector("[data-error]");
  const last = {};
  const human = (n) => {
    if (n == null) return "";
    const units = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  };
  function draw(job) {
    state.textContent = job.state;
    state.className = "chip " + (job.state === "succeeded" ? "ok" : job.state === "failed" ? "bad" : "");
    const now = Date.now() / 1000;
    for (const [item, p] of Object.entries(job.progress || {})) {
      let row = rows.querySelector(`[data-item="${item}"]`);
      if (!row) {
        row = document.createElement("tr"); row.dataset.item = item;
        row.innerHTML = "<td class=mono></td><td></td><td><progress max=1 value=0></progress></td><td></td><td></td>";
        row.children[0].textContent = item; rows.appendChild(row);
      }
      row.children[1].textContent = p.phase;
      const bar = row.querySelector("progress");
      if (p.total) { bar.max = p.total; bar.value = p.current || 0; } else { bar.removeAttribute("value"); }
      row.children[3].textContent = p.total ? `${human(p.current)} / ${human(p.total)}` : human(p.current);
      const prev = last[item];
      if (prev && now > prev.t && p.current > prev.c) {
        row.children[4].textContent = human((p.current - prev.c) / (now - prev.t)) + "/s";
      }
      if (p.phase !== "Downloading" && p.phase !== "Pushing" && p.phase !== "Importing") row.children[4].textContent = "";
      last[item] = {c: p.current, t: now};
    }
    log.textContent = (job.log || []).join("\n");
    error.textContent = job.error || "";
    const finished = ["succeeded", "failed", "cancelled"].includes(job.state);
    if (finished) {
      const cancel = root.querySelector("[data-cancel]");
      if (cancel) cancel.remove();
      const result = job.result || {};
      if (result.image && !root.querySelector("[data-result]")) {
        const p = document.createElement("p"), a = document.createElement("a");
        a.dataset.result = ""; a.href = "/images/" + encodeURIComponent(result.image) + "/"; a.textContent = "The image";
        p.appendChild(a); root.appendChild(p);
      }
      if (result.download && !root.querySelector("[data-download]")) {
        const p = document.createElement("p"), a = document.createElement("a");
        a.dataset.download = ""; a.href = result.download; a.textContent = "Download the archive";
        p.appendChild(a); root.appendChild(p);
      }
    }
    return finished;
  }
  async function tick() {
    try {
      const response = await fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
      if (response.ok && draw(await response.json())) return;
    } catch (e) { /* a dropped poll is retried */ }
    setTimeout(tick, 1000);
  }
  tick();
})();
