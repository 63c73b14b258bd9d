// The service's only script: sign-in from the personal link, uploads (drag and drop), and
// parts of the page refreshed while work is graded. Server-rendered HTML, no framework.
(function () {
  'use strict';
  var csrf = (document.querySelector('meta[name=csrf]') || {}).content || '';

  function say(el, text, kind) {
    if (!el) return;
    el.textContent = text;
    el.className = kind || '';
  }

  // ---- sign-in: the token is in the link's fragment, which no server ever sees
  var signin = document.getElementById('signin-form');
  if (signin && location.hash.length > 1) {
    var token = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, '', location.pathname);
    say(document.getElementById('signin-status'), 'Входим…');
    fetch('/signin', {method: 'POST', credentials: 'same-origin',
                      headers: {'Content-Type': 'application/json'},
                      body: JSON.stringify({token: token})})
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        if (res[0]) { location.replace(res[1].next || '/'); }
        else { say(document.getElementById('signin-status'), res[1].error || 'Ссылка не подошла.', 'error'); }
      })
      .catch(function () { say(document.getElementById('signin-status'), 'Сервер не отвечает, попробуйте ещё раз.', 'error'); });
  }

  // ---- parts of the page that follow the grading
  var timers = {};
  function poll(el) {
    var url = el.dataset.poll;
    fetch(url, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (text) {
        if (text !== el.dataset.last) {
          el.innerHTML = text;   // HTML the server rendered and escaped
          el.dataset.last = text;
          var counters = el.querySelector('[data-version]');
          var frame = document.getElementById('report');
          if (counters && frame && frame.dataset.version !== counters.dataset.version) {
            if (frame.dataset.version) frame.src = '/desk/report.html?v=' + counters.dataset.version;
            frame.dataset.version = counters.dataset.version;
          }
        }
        schedule(el);
      })
      .catch(function () { schedule(el, 5000); });
  }
  function schedule(el, delay) {
    var busy = el.querySelector('[data-state=queued],[data-state=running]') ||
               (el.querySelector('#n-queued') && (el.querySelector('#n-queued').textContent !== '0' ||
                                                  el.querySelector('#n-running').textContent !== '0'));
    clearTimeout(timers[el.id]);
    timers[el.id] = setTimeout(function () { poll(el); }, delay || (busy ? 1000 : 4000));
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-poll]'), function (el) {
    el.dataset.last = el.innerHTML;
    var counters = el.querySelector('[data-version]');
    var frame = document.getElementById('report');
    if (counters && frame) frame.dataset.version = counters.dataset.version;
    schedule(el);
  });

  // ---- uploads
  var form = document.getElementById('upload');
  if (!form) return;
  var drop = document.getElementById('drop'), input = document.getElementById('files');
  var status = document.getElementById('upload-status'), chosen = document.getElementById('chosen');
  var dropped = null;
  function show(files) {
    chosen.textContent = files.length ? 'Выбрано: ' + Array.prototype.map.call(files, function (f) { return f.name; }).join(', ') : '';
  }
  ['dragenter', 'dragover'].forEach(function (t) {
    drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.add('over'); });
  });
  ['dragleave', 'drop'].forEach(function (t) {
    drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.remove('over'); });
  });
  drop.addEventListener('drop', function (ev) { dropped = ev.dataTransfer.files; show(dropped); });
  input.addEventListener('change', function () { dropped = null; show(input.files); });
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var files = dropped || input.files;
    if (!files || !files.length) { say(status, 'Сначала выберите или перетащите файлы.', 'error'); return; }
    var data = new FormData();
    Array.prototype.forEach.call(files, function (f) { data.append('files', f, f.name); });
    var key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random();
    document.getElementById('send').disabled = true;
    say(status, 'Загружаем…');
    fetch('/upload', {method: 'POST', credentials: 'same-origin', body: data,
                      headers: {'X-CSRF-Token': csrf, 'Idempotency-Key': key}})
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        var j = res[1];
        if (res[0]) {
          say(status, 'Принято' + (j.position ? ', место в очереди: ' + j.position : '') + '.' +
                      (j.warnings && j.warnings.length ? ' ' + j.warnings.join(' ') : ''), 'ok');
          dropped = null; input.value = ''; show([]);
          var list = document.getElementById('attempts');
          if (list) poll(list);
        } else {
          say(status, j.error || 'Не принято.', 'error');
        }
      })
      .catch(function () { say(status, 'Сервер не ответил: работа могла не дойти, попробуйте ещё раз.', 'error'); })
      .then(function () { document.getElementById('send').disabled = false; });
  });
})();
