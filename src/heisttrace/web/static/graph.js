// The graph explorer: aggregated taint-flow graph, expand on click, highlight a path.
// Labels are drawn on the canvas or set with textContent, never parsed as HTML.
(function () {
  'use strict';
  var box = document.getElementById('cy');
  var caseName = box.getAttribute('data-case');
  var api = '/api/cases/' + encodeURIComponent(caseName);
  var expanded = new Set(), pinned = new Set(), path = [];
  var statusEl = document.getElementById('status'), details = document.getElementById('details');

  function fmt(v) {
    return Number(v).toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function show(rows, extra) {
    details.textContent = '';
    var dl = el('dl');
    rows.forEach(function (r) { dl.appendChild(el('dt', r[0])); dl.appendChild(el('dd', r[1])); });
    details.appendChild(dl);
    (extra || []).forEach(function (x) { details.appendChild(x); });
  }

  var cy = cytoscape({
    container: box, wheelSensitivity: 0.3, minZoom: 0.05, maxZoom: 3,
    style: [
      {selector: 'node', style: {'label': 'data(label)', 'font-size': 10, 'text-wrap': 'ellipsis',
        'text-max-width': 150, 'width': 'data(size)', 'height': 'data(size)',
        'background-color': '#4a5568', 'text-valign': 'bottom', 'text-margin-y': 3}},
      {selector: 'node[kind = "group"][members > 1]', style: {'shape': 'round-rectangle', 'background-color': '#2b6cb0'}},
      {selector: 'node[kind = "more"]', style: {'shape': 'diamond', 'background-color': '#a0aec0'}},
      {selector: 'node[?entity]', style: {'background-color': '#c05621'}},
      {selector: 'edge', style: {'width': 'data(w)', 'curve-style': 'bezier', 'target-arrow-shape': 'triangle',
        'line-color': '#90cdf4', 'target-arrow-color': '#90cdf4', 'label': 'data(label)', 'font-size': 8,
        'text-wrap': 'wrap', 'min-zoomed-font-size': 4}},
      {selector: '.hl', style: {'background-color': '#e53e3e', 'line-color': '#e53e3e',
        'target-arrow-color': '#e53e3e', 'z-index': 10}},
      {selector: ':selected', style: {'border-width': 3, 'border-color': '#1a202c'}}
    ]
  });

  function url() {
    var q = [];
    expanded.forEach(function (g) { q.push('expand=' + encodeURIComponent(g)); });
    pinned.forEach(function (a) { q.push('pin=' + encodeURIComponent(a)); });
    return api + '/graph' + (q.length ? '?' + q.join('&') : '');
  }

  function render(g) {
    var maxIn = Math.max.apply(null, g.nodes.map(function (n) { return n.inflow; }).concat([1]));
    var maxAmt = Math.max.apply(null, g.edges.map(function (e) { return e.amount; }).concat([1]));
    var rows = {};
    var els = [];
    g.nodes.forEach(function (n) {
      var col = n.hop < 0 ? 99 : n.hop;
      rows[col] = (rows[col] || 0) + 1;
      els.push({group: 'nodes', data: {id: n.id, label: n.label, kind: n.kind, group: n.group,
        address: n.address || null, entity: n.entity || null, hop: n.hop, inflow: n.inflow,
        members: n.size || 1, size: 14 + 40 * Math.sqrt(n.inflow / maxIn)},
        position: {x: col * 260, y: (rows[col] - 1) * 70}});
    });
    g.edges.forEach(function (e) {
      els.push({group: 'edges', data: {id: e.id, source: e.source, target: e.target,
        label: fmt(e.amount) + '\n' + e.count + '× · ' + String(e.first).slice(0, 16),
        amount: e.amount, count: e.count, first: e.first, last: e.last,
        kinds: e.kinds.join(', '), assets: e.assets.join(', '),
        w: 1 + 9 * Math.sqrt(e.amount / maxAmt)}});
    });
    cy.batch(function () { cy.elements().remove(); cy.add(els); });
    cy.layout({name: 'preset', fit: true, padding: 30}).run();
    statusEl.textContent = g.nodes.length + ' nodes, ' + g.edges.length + ' edges (from ' +
      g.total_edges + ' taint-flow edges)';
  }

  function highlight() {
    cy.elements().removeClass('hl');
    for (var i = 0; i < path.length; i++) {
      cy.getElementById('a:' + path[i]).addClass('hl');
      if (i > 0) cy.getElementById('a:' + path[i - 1] + '->a:' + path[i]).addClass('hl');
    }
    var hl = cy.$('.hl');
    if (hl.length) cy.fit(hl, 60);
  }

  function load() {
    box.setAttribute('data-ready', '0');
    return fetch(url(), {credentials: 'same-origin'}).then(function (r) {
      if (!r.ok) throw new Error('graph: HTTP ' + r.status);
      return r.json();
    }).then(function (g) {
      render(g);
      highlight();
      box.setAttribute('data-ready', '1');
    }).catch(function (err) { statusEl.textContent = String(err); });
  }

  function highlightPath(address) {
    address = address.trim();
    return fetch(api + '/paths?limit=1&address=' + encodeURIComponent(address)).then(function (r) {
      return r.json();
    }).then(function (res) {
      if (!res.paths || !res.paths.length) {
        statusEl.textContent = 'no path to ' + address;
        path = [];
        return load();
      }
      var p = res.paths[0];
      path = p.addresses;
      pinned.clear(); path.forEach(function (a) { pinned.add(a); });
      return load().then(function () {
        var rows = [['path to', address], ['hops', p.hops], ['bottleneck', fmt(p.bottleneck)]];
        var ol = el('ol', null, {id: 'path-list'});
        p.edges.forEach(function (e) {
          ol.appendChild(el('li', e.src + ' → ' + e.dst + ': ' + fmt(e.origin_taint) + ' (' + e.time + ')'));
        });
        show(rows, [ol]);
      });
    });
  }

  cy.on('tap', 'node', function (ev) {
    var d = ev.target.data();
    if (d.kind === 'group' && d.members > 1) {
      expanded.add(d.group);
      load();
      return;
    }
    var rows = [['node', d.label], ['hop', d.hop], ['inflow', fmt(d.inflow)]];
    if (d.entity) rows.push(['entity', d.entity]);
    var extra = [];
    if (d.address) {
      rows.unshift(['address', d.address]);
      var a = el('a', 'address page', {href: '/addresses/' + encodeURIComponent(d.address) +
        '?case=' + encodeURIComponent(caseName)});
      var b = el('button', 'path to here', {id: 'path-here'});
      b.addEventListener('click', function () { highlightPath(d.address); });
      extra = [a, el('span', ' '), b];
    }
    show(rows, extra);
  });
  cy.on('tap', 'edge', function (ev) {
    var d = ev.target.data();
    show([['from', ev.target.source().data('label')], ['to', ev.target.target().data('label')],
      ['amount', fmt(d.amount)], ['transfers', d.count], ['kinds', d.kinds], ['assets', d.assets],
      ['first', d.first], ['last', d.last]]);
  });
  document.getElementById('path-button').addEventListener('click', function () {
    highlightPath(document.getElementById('path-input').value);
  });
  document.getElementById('reset-button').addEventListener('click', function () {
    expanded.clear(); pinned.clear(); path = []; load();
  });

  window.heistGraph = {cy: cy, expanded: expanded, highlightPath: highlightPath, path: function () { return path; }};
  var start = new URLSearchParams(location.search).get('path');
  if (start) {
    document.getElementById('path-input').value = start;
    highlightPath(start);
  } else if (document.getElementById('graph-data')) {
    render(JSON.parse(document.getElementById('graph-data').textContent));
    box.setAttribute('data-ready', '1');
  } else {
    load();
  }
})();
