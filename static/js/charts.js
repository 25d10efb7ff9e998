// Renders the plotly figures that dashboard/charts.py builds, and refreshes
// them while the tab is visible. Reads its configuration from data-* attributes; a refresh that
// fails is reported to app.js's live-status banner ("live:failed"), one that works clears it.
(function () {
  "use strict";
  // No "Share chart": plotly.js 4 offers by default to upload a chart, with its data, to Plotly Cloud.
  var config = { responsive: true, displaylogo: false, showSendToCloud: false };
  // As app.js's htmx polls: an answer a hung server never sends ends the refresh, and the banner says so.
  var TIMEOUT_MS = 10000;

  function render(section) {
    var url = section.getAttribute("data-chart-url");
    var init = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (window.AbortSignal && AbortSignal.timeout) { init.signal = AbortSignal.timeout(TIMEOUT_MS); }
    return fetch(url, init)
      .then(function (resp) {
        // Without a session the endpoint answers 401; a redirect (to a login page) means the same.
        if (resp.status === 401 || resp.redirected) {
          throw Object.assign(new Error("the session has ended"), { expired: true });
        }
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        var type = resp.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") !== 0) { throw new Error("the answer was not JSON but " + (type || "untyped")); }
        return resp.json();
      })
      .then(function (payload) {
        section.querySelectorAll("[data-figure]").forEach(function (div) {
          var fig = payload.figures[div.getAttribute("data-figure")];
          if (fig) {
            window.Plotly.react(div, fig.data, fig.layout, config);
            div.setAttribute("data-rendered", "true");
          }
        });
        section.dispatchEvent(new CustomEvent("charts:rendered", { bubbles: true }));
        document.dispatchEvent(new CustomEvent("live:ok", { detail: { what: "the charts" } }));
      })
      .catch(function (err) {
        console.error("charts:", err);
        var reason = err.name === "TimeoutError" ? "no answer within " + TIMEOUT_MS / 1000 + " s" : err.message;
        document.dispatchEvent(new CustomEvent("live:failed", {
          detail: { what: "the charts", expired: Boolean(err.expired), reason: reason },
        }));
      });
  }

  function start() {
    document.querySelectorAll("[data-chart-url]").forEach(function (section) {
      render(section);
      var every = parseInt(section.getAttribute("data-refresh-s") || "15", 10) * 1000;
      window.setInterval(function () {
        if (!document.hidden) { render(section); }
      }, every);
      document.addEventListener("visibilitychange", function () {
        if (!document.hidden) { render(section); }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
