// Relief: no inline scripts (the CSP forbids them); behaviour lives here.
(function () {
  "use strict";

  // The waiting page (429). Everyone turned away at the same moment must not
  // come back at the same moment: the wait is Retry-After plus a random share
  // of it (so between 1× and 2× Retry-After).
  function jittered(seconds) {
    var base = seconds > 0 ? seconds : 5;
    return base * 1000 + Math.floor(Math.random() * base * 1000);
  }

  // countdown shows the seconds left in el (its data-template has "%s" where
  // the number goes) and calls done when the wait is over.
  function countdown(el, wait, done) {
    var end = Date.now() + wait;
    var template = el ? el.getAttribute("data-template") : null;
    function show() {
      var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      if (el && template) { el.textContent = template.replace("%s", String(left)); }
      if (Date.now() >= end) { clearInterval(tick); done(); }
    }
    var tick = setInterval(show, 1000);
    show();
  }

  // A page (GET) was turned away: load it again by itself, once, after the wait.
  var reload = document.querySelector("[data-busy-reload]");
  if (reload) {
    countdown(reload.querySelector("[data-busy-countdown]"),
      jittered(parseInt(reload.getAttribute("data-busy-reload"), 10)),
      function () { window.location.reload(); });
  }

  // A form (POST) was turned away: never send it again by itself. The page
  // holds the same fields (and the same idempotency key); the button comes
  // alive after the wait and the merchant decides.
  var form = document.querySelector("form[data-busy-wait]");
  if (form) {
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    countdown(form.querySelector("[data-busy-countdown]"),
      jittered(parseInt(form.getAttribute("data-busy-wait"), 10)),
      function () { if (button) { button.disabled = false; button.focus(); } });
    form.addEventListener("submit", function () { if (button) { button.disabled = true; } });
  }
})();
