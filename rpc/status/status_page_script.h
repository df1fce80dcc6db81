// The /status page's style sheet and script, inlined into the page by
// StatusPage::RenderHtml(). Constants only; thread-safe.
//
// The script reads the page's inline JSON (id "bevrpc-status-data", the
// same document as /status?format=json), draws two Chart.js line charts per
// method (calls/s with error %, p50/p99 in ms) into the canvases with class
// "bevrpc-chart", then refetches the JSON every two sample intervals and
// updates the charts, the table and the summary in place. When it has
// drawn, <body data-rendered="N"> holds the number of charts (tests look
// for it); without Chart.js it is "no-chartjs" and the table still works.
#ifndef BEVRPC_RPC_STATUS_STATUS_PAGE_SCRIPT_H_
#define BEVRPC_RPC_STATUS_STATUS_PAGE_SCRIPT_H_

namespace bevrpc::status {

inline constexpr char kStatusPageCss[] = R"css(
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.05em;margin:1em 0 .3em}
.summary,.note{color:#555}
table{border-collapse:collapse}
th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}
th{background:#f4f4f4}
.bevrpc-method{margin-bottom:1em}
.bevrpc-chart-box{display:inline-block;position:relative;width:min(560px,46vw);height:200px;margin-right:1em}
)css";

inline constexpr char kStatusPageScript[] = R"js(
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('bevrpc-status-data').textContent);
  if (typeof Chart === 'undefined') {
    document.body.setAttribute('data-rendered', 'no-chartjs');
    return;
  }
  document.getElementById('bevrpc-charts').hidden = false;
  var charts = {};

  function fixed(v, d) { return v === null ? '-' : v.toFixed(d); }
  function qps(v) { return v === null ? '-' : fixed(v, v >= 100 ? 0 : 1); }
  function rate(v) { return v === null ? '-' : (v * 100).toFixed(2) + '%'; }
  function secs(v) {
    if (v === null) return '-';
    if (v < 1e-3) return (v * 1e6).toFixed(0) + ' \u00b5s';
    if (v < 1) return (v * 1e3).toFixed(1) + ' ms';
    return v.toFixed(2) + ' s';
  }
  function uptime(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24,
        m = Math.floor(s / 60) % 60, r = Math.floor(s) % 60;
    if (d > 0) return d + 'd ' + h + 'h ' + m + 'm';
    if (h > 0) return h + 'h ' + m + 'm ' + r + 's';
    if (m > 0) return m + 'm ' + r + 's';
    return r + 's';
  }
  function two(n) { return (n < 10 ? '0' : '') + n; }
  function clock(t) {  // local hh:mm:ss, short enough for six ticks
    var d = new Date(t * 1000);
    return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
  }
  function scaled(values, k) {
    return values.map(function (v) { return v === null ? null : v * k; });
  }
  function line(label, color, axis) {
    return {label: label, data: [], borderColor: color, backgroundColor: color,
            borderWidth: 1.5, pointRadius: 0, spanGaps: false, yAxisID: axis};
  }
  function make(canvas, kind) {
    var traffic = kind === 'traffic';
    var scales = {
      x: {ticks: {maxTicksLimit: 6, maxRotation: 0}},
      y: {beginAtZero: true, title: {display: true, text: traffic ? 'calls/s' : 'ms'}}
    };
    if (traffic) {
      scales.y1 = {beginAtZero: true, suggestedMax: 1, position: 'right',
                   grid: {drawOnChartArea: false}, title: {display: true, text: 'errors %'}};
    }
    return new Chart(canvas, {
      type: 'line',
      data: {labels: [], datasets: traffic
          ? [line('calls/s', '#1f77b4', 'y'), line('errors %', '#d62728', 'y1')]
          : [line('p50 ms', '#2ca02c', 'y'), line('p99 ms', '#ff7f0e', 'y')]},
      options: {animation: false, responsive: true, maintainAspectRatio: false,
                interaction: {mode: 'index', intersect: false},
                plugins: {legend: {position: 'bottom'}}, scales: scales}
    });
  }
  function find(selector, method) {
    var all = document.querySelectorAll(selector);
    var out = [];
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute('data-method') === method) out.push(all[i]);
    }
    return out;
  }
  function cell(row, name, text) {
    var c = row.querySelector('td.' + name);
    if (c) c.textContent = text;
  }
  function draw(d) {
    var drawn = 0;
    document.getElementById('bevrpc-uptime').textContent = uptime(d.uptime_seconds);
    document.getElementById('bevrpc-connections').textContent = fixed(d.connections, 0);
    document.getElementById('bevrpc-in-flight').textContent = fixed(d.in_flight, 0);
    d.methods.forEach(function (m) {
      var id = m.service + '/' + m.method;
      find('tr', id).forEach(function (row) {
        cell(row, 'qps', qps(m.qps));
        cell(row, 'error_rate', rate(m.error_rate));
        cell(row, 'p50', secs(m.p50_seconds));
        cell(row, 'p99', secs(m.p99_seconds));
        cell(row, 'in_flight', fixed(m.in_flight, 0));
        cell(row, 'calls', fixed(m.calls, 0));
        cell(row, 'errors', fixed(m.errors, 0));
      });
      if (!charts[id]) {
        var pair = {};
        find('canvas.bevrpc-chart', id).forEach(function (canvas) {
          pair[canvas.getAttribute('data-kind')] = make(canvas, canvas.getAttribute('data-kind'));
        });
        if (!pair.traffic || !pair.latency) return;  // new since the page loaded
        charts[id] = pair;
      }
      var h = m.history;
      var labels = h.t.map(clock);
      var c = charts[id];
      c.traffic.data.labels = labels;
      c.traffic.data.datasets[0].data = h.qps;
      c.traffic.data.datasets[1].data = scaled(h.error_rate, 100);
      c.latency.data.labels = labels;
      c.latency.data.datasets[0].data = scaled(h.p50_seconds, 1000);
      c.latency.data.datasets[1].data = scaled(h.p99_seconds, 1000);
      c.traffic.update('none');
      c.latency.update('none');
      drawn += 2;
    });
    document.body.setAttribute('data-rendered', String(drawn));
  }
  draw(data);
  var url = location.pathname + '?format=json';
  setInterval(function () {
    fetch(url, {cache: 'no-store'})
        .then(function (r) { return r.json(); })
        .then(draw)
        .catch(function () {});  // the server restarting: try again later
  }, Math.max(1000, 2000 * data.sample_interval_seconds));
})();
)js";

}  // namespace bevrpc::status

#endif  // BEVRPC_RPC_STATUS_STATUS_PAGE_SCRIPT_H_
