// A job's page: htmx swaps in its progress every second (ui/_job_progress.html); this adds each
// item's speed, from the bytes it had at the previous swap.
(function () {
  const seen = {};
  const units = ["B", "kB", "MB", "GB", "TB"];
  function human(n) { let i = 0; while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; } return n.toFixed(i ? 1 : 0) + " " + units[i]; }
  function measure() {
    const now = Date.now() / 1000;
    document.querySelectorAll("#job-progress tr[data-item]").forEach((row) => {
      const item = row.dataset.item, current = Number(row.dataset.current || 0), before = seen[item];
      if (before && now > before.t && current > before.c) row.querySelector("[data-speed]").textContent = human((current - before.c) / (now - before.t)) + "/s";
      if (!before || current !== before.c) seen[item] = { c: current, t: now };
    });
  }
  document.body.addEventListener("htmx:afterSettle", measure);
  measure();
})();
