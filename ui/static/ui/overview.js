// The overview's disk-by-repository chart (Chart.js, vendored): horizontal bars, sizes as the
// server wrote them (localised), redrawn in the other theme's colours when the theme changes.
(function () {
  const canvas = document.getElementById("disk-chart");
  const data = JSON.parse(document.getElementById("disk-chart-data").textContent);
  if (!canvas || !window.Chart || !data.length) return;
  let chart = null;
  function draw() {
    const style = getComputedStyle(document.body);
    const text = style.getPropertyValue("--bs-body-color").trim(), grid = style.getPropertyValue("--bs-border-color").trim();
    const bar = style.getPropertyValue("--bs-primary").trim();
    if (chart) chart.destroy();
    chart = new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.map((row) => row.label), datasets: [{ data: data.map((row) => row.bytes), backgroundColor: bar, borderRadius: 4 }] },
      options: {
        indexAxis: "y", maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => data[item.dataIndex].size } } },
        scales: { x: { ticks: { color: text, callback: () => "" }, grid: { color: grid } },
                  y: { ticks: { color: text, autoSkip: false }, grid: { display: false } } },
      },
    });
    canvas.dataset.drawn = String(data.length);
  }
  draw();
  document.addEventListener("ui:theme", draw);
})();
