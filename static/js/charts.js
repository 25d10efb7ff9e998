// Renders the plotly figures that dashboard/charts.py builds, and refreshes
// them while the tab is visible. Reads its configuration from data-* attributes.
(function () {
  "use strict";
  var config = { responsive: true, displaylogo: false };

  function render(section) {
    var url = section.getAttribute("data-chart-url");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (!resp.ok) { throw new Error("charts: HTTP " + resp.status); }
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
      })
      .catch(function (err) { console.error(err); });
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
