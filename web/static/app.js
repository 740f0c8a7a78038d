// Relief: no inline scripts (the CSP forbids them); behaviour lives here.
(function () {
  "use strict";
  // The waiting page (429) retries by itself after Retry-After plus jitter, so a
  // crowd that was turned away does not come back all at the same second.
  var busy = document.querySelector("[data-retry-after]");
  if (busy) {
    var base = parseInt(busy.getAttribute("data-retry-after"), 10) || 5;
    var wait = base * 1000 + Math.floor(Math.random() * base * 1000);
    var el = document.getElementById("busy-countdown");
    var left = Math.ceil(wait / 1000);
    var tick = setInterval(function () {
      left -= 1;
      if (el && left > 0) { el.textContent = el.textContent.replace(/\d+/, String(left)); }
    }, 1000);
    setTimeout(function () { clearInterval(tick); window.location.reload(); }, wait);
  }
})();
