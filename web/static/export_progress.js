// Relief exports page: the native <progress> bars of export jobs span the
// card (the CSP forbids style attributes, so the width is set from here) on
// load and whenever htmx swaps in a fresh progress block.
(function () {
  "use strict";
  function widen(root) {
    var bars = (root || document).querySelectorAll("progress");
    for (var i = 0; i < bars.length; i++) { bars[i].style.width = "100%"; bars[i].style.height = "1.6rem"; }
  }
  widen(document);
  document.addEventListener("htmx:load", function (e) { widen(e.target); });
})();
