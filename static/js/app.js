// Live polling pauses while the tab is hidden and catches up when it is shown again.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (document.hidden && el && el.hasAttribute("data-poll")) {
      evt.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && window.htmx) {
      document.querySelectorAll("[data-poll]").forEach(function (el) {
        window.htmx.trigger(el, "refresh");
      });
    }
  });
})();
