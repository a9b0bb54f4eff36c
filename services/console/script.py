"""The console's one script (served as /static/console.js): server-sent events into the page, no build step.

The page says what to follow in data attributes: `data-stream` (a subject), `data-rows` (the incidents rows
fragment to re-fetch when an event arrives), `data-incident` (an incident page: say when it has news).
Values from events are set with textContent, never parsed as HTML; the incidents fragment is server-escaped.
"""

SCRIPT = r"""(function () {
  "use strict";
  var body = document.body, stream = body.dataset.stream, page = body.dataset.page;
  var status = document.getElementById("live-status");
  if (!stream || !window.EventSource) { return; }
  var say = function (text) { if (status) { status.textContent = text; } };
  var backlog = page === "events" ? 50 : 0;
  var src = new EventSource("/events/stream?subject=" + encodeURIComponent(stream) + "&backlog=" + backlog);
  src.onopen = function () { say("live: following " + stream); };
  src.onerror = function () { say("disconnected; reconnecting…"); };
  if (page === "events") {
    var rows = document.getElementById("event-rows");
    src.addEventListener("pagerpatch", function (m) {
      var e = JSON.parse(m.data), tr = document.createElement("tr");
      tr.dataset.type = e.type;
      tr.dataset.seq = e.seq;
      [e.seq, e.occurred_at, e.type, null, e.source, e.summary].forEach(function (v, i) {
        var td = document.createElement("td");
        if (i === 3 && e.incident_id) {
          var a = document.createElement("a");
          a.href = "/incidents/" + e.incident_id;
          a.textContent = String(e.incident_id).slice(0, 8);
          td.appendChild(a);
        } else {
          td.textContent = v === null || v === undefined ? "" : String(v);
        }
        tr.appendChild(td);
      });
      rows.insertBefore(tr, rows.firstChild);
      while (rows.rows.length > 500) { rows.deleteRow(-1); }
    });
  } else if (page === "incident") {
    src.addEventListener("pagerpatch", function (m) {
      var e = JSON.parse(m.data);
      if (e.incident_id === body.dataset.incident) { say("new: " + e.type + " (reload to see it)"); }
    });
  } else if (body.dataset.rows) {
    var timer = null;
    src.addEventListener("pagerpatch", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch(body.dataset.rows, {credentials: "same-origin"}).then(function (r) {
          return r.ok ? r.text() : null;
        }).then(function (html) {
          if (html !== null) {
            document.getElementById("incident-rows").innerHTML = html;
            say("live: updated " + new Date().toLocaleTimeString());
          }
        });
      }, 300);
    });
  }
})();
"""
