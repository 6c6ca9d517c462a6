import Hummingbird
import NIOCore

/// The dashboard's one stylesheet and one script, served from memory (no build step, no files to deploy).
enum DashboardAssets {
    static func response(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "public, max-age=300"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    static let style = """
        :root { color-scheme: light dark; --line: #8884; --accent: #3a6ff7; }
        body { font: 14px/1.45 system-ui, sans-serif; margin: 0; }
        nav { display: flex; gap: 1em; align-items: center; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
        nav a { text-decoration: none; } nav .brand { font-weight: 700; margin-right: 1em; }
        nav form { margin-left: auto; } #live-state { color: #999; } #live-state.on { color: #2a2; }
        main { padding: 1em 1.2em; max-width: 1400px; }
        table { border-collapse: collapse; width: 100%; margin: .5em 0 1.5em; }
        th, td { border-bottom: 1px solid var(--line); padding: .3em .5em; text-align: left; vertical-align: top; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        .badge { font-size: 80%; padding: .1em .4em; border-radius: .3em; background: #e9a23b; color: #000; }
        .status.failed, .error { color: #c0392b; } .status.completed { color: #27ae60; } .status.processing { color: var(--accent); }
        pre { background: #8881; padding: .6em; overflow: auto; max-height: 30em; white-space: pre-wrap; word-break: break-all; }
        .tabs { list-style: none; display: flex; gap: .3em; padding: 0; flex-wrap: wrap; }
        .tabs li a { display: block; padding: .2em .6em; border: 1px solid var(--line); border-radius: .3em; text-decoration: none; }
        .tabs li.current a { background: var(--accent); color: #fff; }
        button { cursor: pointer; margin-right: .3em; }
        #flash:not(:empty) { margin: .6em 1.2em; padding: .5em; border: 1px solid #c0392b; }
        .chart svg { width: 100%; max-width: 900px; height: 140px; border-bottom: 1px solid var(--line); }
        .chart rect.completed { fill: #27ae60; } .chart rect.failed { fill: #c0392b; }
        .feed { font-family: ui-monospace, monospace; font-size: 12px; max-height: 16em; overflow: auto; }
        .empty { color: #888; } .sign-in label { display: block; margin: .5em 0; }
        """

    static let script = """
        'use strict';
        (function () {
          const body = document.body;
          const token = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
          const state = document.getElementById('live-state');
          const flash = (text) => { const box = document.getElementById('flash'); if (box) box.textContent = text; };
          function localTimes(root) {
            root.querySelectorAll('time[data-ms]').forEach((node) => {
              const date = new Date(Number(node.dataset.ms));
              node.title = node.getAttribute('datetime');
              node.textContent = date.toLocaleString();
            });
          }
          let refreshing = false, again = false, last = 0, held = false, source = null, followed = null;
          // A refresh replaces the live part, so it would wipe what is being typed in a field of it (the search box)
          // and take the focus away: it waits until the field is left.
          function typing() {
            const field = document.activeElement;
            return !!field && ['INPUT', 'TEXTAREA', 'SELECT'].includes(field.tagName) && document.getElementById('live').contains(field);
          }
          // A button held down must still be there when it is released, or the click is lost: while a pointer is
          // down, refreshes wait for it to come up.
          let pressing = false, waiting = false;
          document.addEventListener('pointerdown', () => { pressing = true; }, true);
          const released = () => { pressing = false; if (waiting) { waiting = false; setTimeout(refresh, 0); } };
          document.addEventListener('pointerup', released, true);
          document.addEventListener('pointercancel', released, true);
          function hold() {
            if (!held) { held = true; document.activeElement.addEventListener('blur', () => { held = false; soon(); }, { once: true }); }
          }
          async function refresh() {
            if (typing()) { hold(); return; }
            if (pressing) { waiting = true; return; }
            if (refreshing) { again = true; return; }
            refreshing = true;
            try {
              const url = new URL(location.href); url.searchParams.set('fragment', '1');
              const answer = await fetch(url, { credentials: 'same-origin' });
              const html = answer.ok ? await answer.text() : null;
              // The field may have got the focus while the fragment was on its way: keep what is typed there.
              if (html !== null && typing()) { hold(); return; }
              if (html !== null && pressing) { waiting = true; return; }
              if (html !== null) {
                const live = document.getElementById('live');
                const feed = document.getElementById('feed');
                const kept = feed ? Array.from(feed.children) : [];
                live.innerHTML = html;
                const newFeed = document.getElementById('feed');
                if (newFeed) kept.forEach((item) => newFeed.appendChild(item));
                localTimes(live);
                body.dataset.refreshed = String(Date.now());
                if (body.dataset.page && window.EventSource) follow();
              }
            } finally {
              refreshing = false; last = Date.now();
              if (again) { again = false; setTimeout(refresh, 150); }
            }
          }
          function soon() { const wait = Math.max(0, 250 - (Date.now() - last)); setTimeout(refresh, wait); }
          document.addEventListener('click', async (event) => {
            const button = event.target.closest('button.action');
            if (!button) return;
            event.preventDefault();
            if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
            button.disabled = true;
            try {
              const answer = await fetch(button.dataset.path, {
                method: button.dataset.method, credentials: 'same-origin',
                headers: { 'X-CSRF-Token': token(), 'Accept': 'application/json' },
              });
              const reply = await answer.json().catch(() => ({}));
              if (!answer.ok) flash((reply.error && reply.error.message) || ('failed: HTTP ' + answer.status));
              else { flash(''); if (button.dataset.method === 'DELETE' && body.dataset.page === 'job') location.href = '/'; else refresh(); }
            } catch (error) { flash(String(error)); } finally { button.disabled = false; }
          });
          localTimes(document);
          if (!body.dataset.page || !window.EventSource) return;
          // The queues whose events the page follows: those it was rendered with and, on the overview, those it lists
          // now, so that a queue created after the page was loaded is followed from the refresh that shows it on.
          function follow() {
            const names = new Set((body.dataset.queues || '').split(' ').filter(Boolean));
            if (body.dataset.page === 'overview') document.querySelectorAll('#queues tr[data-queue]').forEach((row) => names.add(row.dataset.queue));
            const queues = Array.from(names).sort();
            if (queues.join(' ') === followed) return;
            const replacing = followed !== null;
            followed = queues.join(' ');
            if (source) source.close();
            source = null;
            if (state) state.classList.remove('on');
            if (queues.length === 0) return;
            const url = new URL('/api/events', location.origin);
            queues.forEach((queue) => url.searchParams.append('queue', queue));
            const current = new EventSource(url);
            let opened = replacing;
            source = current;
            // Events start at the connection: after a reconnection, or a new set of queues, what happened in between
            // shows with a refresh.
            current.onopen = () => { if (state) state.classList.add('on'); if (opened) soon(); opened = true; };
            current.onerror = () => state && state.classList.remove('on');
            current.addEventListener('jobs', (message) => {
              const events = JSON.parse(message.data);
              const feed = document.getElementById('feed');
              if (feed) {
                events.slice(-20).forEach((e) => {
                  const item = document.createElement('li');
                  item.textContent = new Date(e.at).toLocaleTimeString() + '  ' + e.id + '  ' + e.type + '  ' + (e.from || 'new') + ' → ' + e.to;
                  feed.insertBefore(item, feed.firstChild);
                });
                while (feed.children.length > 50) feed.removeChild(feed.lastChild);
              }
              if (body.dataset.page === 'job' && !events.some((e) => e.id === body.dataset.job)) return;
              soon();
            });
          }
          follow();
          // An overview without any queue has nothing to follow: it looks again every 2 s until the first one appears.
          if (body.dataset.page === 'overview') setInterval(() => { if (!source) refresh(); }, 2000);
        })();
        """
}
