// Relief dashboards: draws every <canvas data-chart="{...}"> with Chart.js.
// The numbers come from the server in the data attribute (the CSP forbids
// inline scripts) and are also in the table next to each chart.
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }
  // KRDS palette: primary, secondary, point, success, warning, danger, grays.
  var palette = ["#256ef4", "#052b57", "#e71825", "#228738", "#ffb114", "#0b78cb", "#8a949e",
    "#6d48d8", "#00a0a0", "#b35c00", "#464c53", "#c3d7fc", "#f2c94c"];
  var lang = document.documentElement.lang || "ko";
  var nf = new Intl.NumberFormat(lang === "en" ? "en-US" : "ko-KR");
  function format(unit, v) {
    if (v === null || v === undefined || isNaN(v)) { return "*"; }
    if (unit === "won") { return nf.format(v) + (lang === "en" ? " KRW" : "원"); }
    if (unit === "hours") { return nf.format(v) + (lang === "en" ? " h" : "시간"); }
    return nf.format(v);
  }
  function draw(canvas) {
    var spec;
    try { spec = JSON.parse(canvas.getAttribute("data-chart")); } catch (e) { return; }
    if (!spec || !spec.labels || spec.labels.length === 0) { return; }
    var many = spec.datasets.length > 1;
    var datasets = spec.datasets.map(function (d, i) {
      var color = many ? palette[i % palette.length] : palette[0];
      return { label: d.label, data: d.data, backgroundColor: color, borderColor: color, borderWidth: 1 };
    });
    var horizontal = !!spec.horizontal;
    var valueAxis = horizontal ? "x" : "y";
    var scales = {};
    scales.x = { stacked: !!spec.stacked };
    scales.y = { stacked: !!spec.stacked };
    scales[valueAxis].beginAtZero = true;
    scales[valueAxis].ticks = { callback: function (v) { return format(spec.unit, v); } };
    new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        // Horizontal bars get room per label; vertical charts stay low.
        aspectRatio: horizontal ? Math.max(1.2, Math.min(3, 24 / spec.labels.length)) : 2.8,
        animation: false,
        scales: scales,
        plugins: {
          legend: { display: many, position: "bottom" },
          tooltip: { callbacks: { label: function (ctx) {
            var v = horizontal ? ctx.parsed.x : ctx.parsed.y;
            return (ctx.dataset.label ? ctx.dataset.label + ": " : "") + format(spec.unit, v);
          } } }
        }
      }
    });
  }
  // Canvas text does not fall back to the page's fonts: use the page's own
  // (Pretendard GOV, with Hangul) once it has loaded.
  Chart.defaults.font.family = window.getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#464c53";
  function drawAll() {
    var canvases = document.querySelectorAll("canvas[data-chart]");
    for (var i = 0; i < canvases.length; i++) { draw(canvases[i]); }
  }
  if (document.fonts && document.fonts.ready) { document.fonts.ready.then(drawAll, drawAll); } else { drawAll(); }
})();
