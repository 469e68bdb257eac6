// SLA countdowns: each <time class="countdown" datetime=...> ticks every
// second. The server renders the same text, so the page works without this.
(function () {
  function text(due, escalations) {
    var s = Math.round((Date.parse(due) - Date.now()) / 1000);
    var a = Math.abs(s), h = Math.floor(a / 3600), m = Math.floor((a % 3600) / 60), r = a % 60;
    var span = (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
    if (escalations > 0) return "overdue (escalated " + escalations + "x), next escalation in " + (s > 0 ? span : "0s");
    return s > 0 ? "due in " + span : "overdue by " + span;
  }
  function tick() {
    document.querySelectorAll("time.countdown").forEach(function (t) {
      t.textContent = text(t.getAttribute("datetime"), parseInt(t.dataset.escalations || "0", 10));
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
})();
