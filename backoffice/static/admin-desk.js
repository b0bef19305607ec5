/* The ticket desk: new messages appear without reloading.
   Polls the desk's JSON endpoint with If-None-Match; the server answers 304
   while the ticket (its version, situation and parcel's events) is unchanged.
   Message, badge and timeline HTML come from the server, already escaped by
   Jinja, so they are inserted as is. */
(function () {
  "use strict";
  var desk = document.getElementById("desk");
  if (!desk || !window.fetch) { return; }

  /* Panels that are not needed to read and answer (customer history, more actions,
     the canned-reply picker) come after the page: each .desk-panel's link is replaced
     by the panel it opens; when that fails, the link stays and still works. */
  var panels = desk.querySelectorAll("[data-panel-url]");
  Array.prototype.forEach.call(panels, function (slot) {
    slot.setAttribute("aria-busy", "true");
    fetch(slot.getAttribute("data-panel-url"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) {
        if (html !== null) {
          slot.innerHTML = html;
          if (!html.trim()) { slot.hidden = true; }
          /* A poll may have moved the page to a newer version meanwhile. */
          var fields = slot.querySelectorAll("input[name='expected_version']");
          for (var i = 0; i < fields.length; i++) { fields[i].value = desk.getAttribute("data-version"); }
        }
      }, function () { /* the link stays */ })
      .then(function () { slot.removeAttribute("aria-busy"); });
  });

  var pollUrl = desk.getAttribute("data-poll-url");
  var state = desk.getAttribute("data-state");
  var lastId = parseInt(desk.getAttribute("data-last-id"), 10) || 0;
  var etag = null;
  var stopped = false;
  var conversation = document.getElementById("conversation");
  var banner = document.getElementById("desk-changed");
  var INTERVAL = 10000;

  function scrollDown() { conversation.scrollTop = conversation.scrollHeight; }

  function setVersion(version) {
    desk.setAttribute("data-version", version);
    var fields = document.querySelectorAll("input[name='expected_version']");
    for (var i = 0; i < fields.length; i++) { fields[i].value = version; }
  }

  /* Presence: the poll tells the server who is here, and whether they typed in
     the reply box lately; its answer says who else is (#desk-presence). */
  var presenceBox = document.getElementById("desk-presence");
  var replyBox = document.getElementById("body");
  var typedAt = 0;
  var TYPING = 10000;
  if (replyBox) {
    replyBox.addEventListener("input", function () {
      var idle = Date.now() - typedAt > TYPING;
      typedAt = Date.now();
      if (idle) { pollSoon(); }  /* colleagues learn of it at once, not in 10 s */
    });
  }
  var timer = null;
  function schedule(ms) {
    if (timer) { window.clearTimeout(timer); }
    timer = window.setTimeout(poll, ms);
  }
  function pollSoon() { schedule(300); }

  /* The parcel's situation badge and tracking box, redrawn when an event arrives. */
  function replaceHtml(id, html) {
    var node = document.getElementById(id);
    if (node && typeof html === "string" && node.outerHTML !== html) { node.outerHTML = html; }
  }
  var situationBox = document.getElementById("desk-situation");

  function apply(data) {
    if (situationBox && typeof data.situation_html === "string" && situationBox.innerHTML !== data.situation_html) {
      situationBox.innerHTML = data.situation_html;
    }
    replaceHtml("tracking-timeline", data.tracking_html);
    if (presenceBox && typeof data.presence === "string" && presenceBox.textContent !== data.presence) {
      presenceBox.textContent = data.presence;
    }
    data.messages.forEach(function (m) {
      if (!document.getElementById("msg-" + m.id)) {
        conversation.insertAdjacentHTML("beforeend", m.html);
      }
    });
    if (data.messages.length) { scrollDown(); }
    lastId = data.last_id;
    if (data.state === state) {
      /* Only messages changed, and they are now on screen: the forms may
         act on the new version without a reload. */
      setVersion(data.version);
    } else {
      banner.classList.add("show");
      stopped = true;
    }
  }

  function poll() {
    if (stopped) { return; }
    if (document.hidden) { schedule(INTERVAL); return; }
    var headers = { "Accept": "application/json" };
    if (etag) { headers["If-None-Match"] = etag; }
    var typing = Date.now() - typedAt < TYPING ? "&typing=1" : "";
    fetch(pollUrl + "?after=" + lastId + typing, { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (resp) {
        if (resp.status === 304) { return null; }
        if (resp.status === 404 || resp.status === 403) {
          banner.classList.add("show");
          stopped = true;
          return null;
        }
        if (!resp.ok) { return null; }
        etag = resp.headers.get("ETag");
        return resp.json();
      })
      .then(function (data) { if (data) { apply(data); } })
      .catch(function () { /* offline for a moment: try again later */ })
      .then(function () { schedule(INTERVAL); });
  }

  scrollDown();
  schedule(1000);  /* a first heartbeat soon: colleagues see this person at once */
})();
