// Live polling pauses while the tab is hidden and catches up when it is shown again.
// A live page that stops refreshing says so in the #live-status banner instead of freezing on old
// numbers: each poller (the htmx polls here, charts.js) reports every refresh as a "live:ok" or a
// "live:failed" event whose detail names what refreshed ({ what, expired, reason }).
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

  var failing = {};  // what -> { expired, reason, since } of its failed refreshes

  function utcTime(date) { return date.toISOString().slice(11, 19) + " UTC"; }

  function showStatus() {
    var banner = document.getElementById("live-status");
    if (!banner) { return; }
    var whats = Object.keys(failing);
    banner.textContent = "";
    banner.hidden = whats.length === 0;
    if (banner.hidden) { return; }
    var expired = whats.some(function (what) { return failing[what].expired; });
    banner.className = "banner live " + (expired ? "alarm" : "stale");
    if (expired) {
      banner.append("Session expired: this page is no longer updating. ");
      var login = document.createElement("a");
      login.href = banner.getAttribute("data-login-url") + "?next=" +
        encodeURIComponent(window.location.pathname + window.location.search);
      login.textContent = "Log in again";
      banner.append(login);
      return;
    }
    banner.append("Data stale: " + whats.map(function (what) {
      return what + " could not refresh since " + utcTime(failing[what].since) + " (" + failing[what].reason + ")";
    }).join("; ") + ". Showing the last data received.");
  }

  document.addEventListener("live:failed", function (evt) {
    var d = evt.detail;
    failing[d.what] = { expired: Boolean(d.expired), reason: d.reason, since: (failing[d.what] || { since: new Date() }).since };
    showStatus();
  });
  document.addEventListener("live:ok", function (evt) {
    delete failing[evt.detail.what];
    showStatus();
  });

  function report(evt) {
    var el = evt.detail && evt.detail.elt;
    if (!el || !el.hasAttribute("data-poll")) { return; }
    var what = el.getAttribute("data-poll") || el.id;
    var status = evt.detail.xhr ? evt.detail.xhr.status : 0;
    if (evt.type === "htmx:afterRequest" && evt.detail.successful) {
      document.dispatchEvent(new CustomEvent("live:ok", { detail: { what: what } }));
    } else {
      var reason = status ? "HTTP " + status : "no answer from the server";
      document.dispatchEvent(new CustomEvent("live:failed", { detail: { what: what, reason: reason } }));
    }
  }
  document.addEventListener("htmx:afterRequest", report);
  document.addEventListener("htmx:sendError", report);

  // htmx sets no timeout of its own: a poll a hung server never answers would leave the page on its last
  // numbers with no banner. Ended after this long, it says so (the next poll tries again).
  var POLL_TIMEOUT_MS = 10000;
  document.addEventListener("htmx:configRequest", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (el && el.hasAttribute("data-poll") && !evt.detail.timeout) {
      evt.detail.timeout = POLL_TIMEOUT_MS;
    }
  });
  document.addEventListener("htmx:timeout", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (!el || !el.hasAttribute("data-poll")) { return; }
    document.dispatchEvent(new CustomEvent("live:failed", { detail: {
      what: el.getAttribute("data-poll") || el.id, reason: "no answer within " + POLL_TIMEOUT_MS / 1000 + " s",
    } }));
  });

  // An htmx answer may swap a field's error block (.field-errors, which its aria-describedby names) in or
  // out long after the page drew the field: its aria-invalid follows that block, not the page load.
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("input[aria-describedby], select[aria-describedby], textarea[aria-describedby]")
      .forEach(function (field) {
        var blocks = field.getAttribute("aria-describedby").split(/\s+/).map(function (id) {
          return document.getElementById(id);
        }).filter(function (el) { return el && el.classList.contains("field-errors"); });
        if (blocks.length === 0) { return; }
        if (blocks.some(function (el) { return el.textContent.trim() !== ""; })) {
          field.setAttribute("aria-invalid", "true");
        } else {
          field.removeAttribute("aria-invalid");
        }
      });
  });

  // The service form: a SageMaker or ECS backend cannot run on simulated metrics (the server refuses it), and
  // a simulated fleet has no CloudWatch; moving the backend moves the metric source off the combination.
  document.addEventListener("change", function (evt) {
    var backend = evt.target;
    if (!backend.matches || !backend.matches(".service-form select[name=backend]")) { return; }
    var source = backend.form.querySelector("select[name=metric_source]");
    if (!source) { return; }
    if (backend.value !== "simulated" && source.value === "simulated") { source.value = "cloudwatch"; }
    if (backend.value === "simulated" && source.value === "cloudwatch") { source.value = "simulated"; }
  });
})();
