// Live updates: the server streams the rollouts section, rendered by the same template as the
// page, on every change; ages tick locally between changes.
(function () {
  "use strict";
  var main = document.getElementById("rollouts");
  var live = document.getElementById("live");
  function human(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 120) return s + "s";
    var m = Math.floor(s / 60);
    if (m < 120) return m + "m" + (m < 10 && s % 60 ? (s % 60) + "s" : "");
    var h = Math.floor(m / 60);
    return h < 48 ? h + "h" + (m % 60 ? (m % 60) + "m" : "") : Math.floor(h / 24) + "d";
  }
  function ages() {
    var ts = document.querySelectorAll("time.age[datetime]");
    for (var i = 0; i < ts.length; i++) {
      ts[i].textContent = human(Date.now() - Date.parse(ts[i].getAttribute("datetime")));
    }
  }
  var events = new EventSource("events");
  events.addEventListener("rollouts", function (e) {
    main.innerHTML = e.data;
    ages();
    live.textContent = "live";
    live.className = "live on";
  });
  events.onerror = function () {
    live.textContent = "reconnecting";
    live.className = "live off";
  };
  setInterval(ages, 1000);
})();
