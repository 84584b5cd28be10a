// app.js: the logic of the page `bookrec serve` answers at GET /. It talks
// only to the server's JSON API (docs/api.md): a reader's history and
// recommendations, an event POSTed when a book is opened or rated (then the
// list is fetched again, and what changed is marked), an anonymous session
// kept in the page and sent to the session endpoint, and the tribe map drawn
// as inline SVG. No framework, no build step: every text goes in through
// textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
// Ten colours with at least 4.5:1 contrast against white (map dots on the
// white map, and white letters on a placeholder cover).
const PALETTE = ['#1f5fa8', '#c0392b', '#2e7d32', '#8e44ad', '#b35900', '#00838f', '#ad1457',
                 '#5d6d1e', '#4e342e', '#37474f'];

const state = {
    reader: null,     // reader id, or null in an anonymous session
    anon: false,
    session: [],      // anonymous session: [{book_id, title}], oldest first
    recIds: [],       // book ids of the list shown, to mark what a new list adds
    history: new Set(),
    points: new Map(), // book_id -> {x, y, tribe, title} from /api/tribes
    tribeNames: new Map(),
    books: new Map(),  // book_id -> promise of /api/books/{id}
};

// --- talking to the server -------------------------------------------------

async function api(path, body) {
    const opts = body === undefined ? {} : {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(body),
    };
    // the write endpoints need the key when the server was started with one
    if (body !== undefined && $('api-key').value)
        opts.headers['X-API-Key'] = $('api-key').value;
    const res = await fetch(path, opts);
    let json = null;
    try {
        json = await res.json();
    } catch (e) {
        // a non-JSON body: the status line says enough
    }
    if (!res.ok) {
        const msg = json && json.error ? json.error.message : res.statusText;
        throw new Error(`${res.status}: ${msg}`);
    }
    return json;
}

const enc = encodeURIComponent;

function book(id) {
    if (!state.books.has(id)) {
        const p = api(`/api/books/${enc(id)}`);
        p.catch(() => state.books.delete(id)); // let a later call retry
        state.books.set(id, p);
    }
    return state.books.get(id);
}

function context() {
    const n = Math.min(50, Math.max(1, parseInt($('count').value, 10) || 10));
    const hour = Math.min(23, Math.max(0, parseInt($('hour').value, 10) || 0));
    return {n, device: $('device').value, hour};
}

function fetchRecs() {
    const c = context();
    const ctx = `device=${c.device}&hour=${c.hour}`;
    if (state.anon)
        return api(`/api/recommendations/session?${ctx}`,
                   {book_ids: state.session.map((b) => b.book_id), n: c.n, explain: true});
    return api(`/api/recommendations/user/${enc(state.reader)}?n=${c.n}&explain=1&${ctx}`);
}

function say(text, isError) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('error', !!isError);
}

// --- loading a reader or a session -------------------------------------

let refreshes = 0;

async function refresh(note) {
    const seq = ++refreshes; // only the latest of overlapping refreshes renders
    try {
        const [recs, user] = await Promise.all([
            fetchRecs(),
            state.anon ? null : api(`/api/users/${enc(state.reader)}`),
        ]);
        if (seq !== refreshes)
            return;
        renderHistory(user);
        const added = renderRecs(recs);
        $('model-version').textContent = recs.model_version || '-';
        let msg = note || '';
        if (note && added >= 0)
            msg += ` The list has ${added} new book${added === 1 ? '' : 's'}.`;
        if (!note && user && !user.known)
            msg = `Reader ${state.reader} is new here: these are cold-start recommendations.`;
        say(msg);
        drawHighlights();
    } catch (e) {
        if (seq === refreshes)
            say(`Could not load: ${e.message}`, true);
    }
}

// A new reader or session: nothing of the previous one stays on screen.
function reset(fields) {
    Object.assign(state, {session: [], recIds: [], history: new Set()}, fields);
    $('recs').replaceChildren();
    $('history').replaceChildren();
    $('history-empty').hidden = false;
    $('details').hidden = true;
    drawHighlights();
}

function startReader(id) {
    id = id.trim();
    if (!id)
        return;
    reset({reader: id, anon: false});
    $('reader-id').value = id;
    $('recs-for').textContent = `for reader ${id}`;
    history.replaceState(null, '', `#reader=${enc(id)}`);
    refresh();
}

function startAnonymous() {
    reset({reader: null, anon: true});
    $('recs-for').textContent = 'for an anonymous reader';
    history.replaceState(null, '', '#anonymous');
    refresh('Anonymous session: open books you like and the list follows them.');
}

// An event for the reader (or a click added to the anonymous session), then
// the list again.
async function interact(b, type, value) {
    const title = b.title || b.book_id;
    try {
        if (state.anon) {
            if (!state.session.some((s) => s.book_id === b.book_id))
                state.session.push({book_id: b.book_id, title});
        } else {
            if (!state.reader)
                return say('Pick a reader first, or start an anonymous session.', true);
            await api('/api/events', {
                user_id: state.reader,
                book_id: b.book_id,
                type,
                value,
                timestamp: Math.floor(Date.now() / 1000),
            });
        }
        const what = type === 'rating' ? `Rated "${title}" ${value} of 5.` : `Opened "${title}".`;
        await refresh(what);
    } catch (e) {
        const hint = /^401/.test(e.message) ? ' Enter the API key under Context.' : '';
        say(`Could not send the ${type}: ${e.message}.${hint}`, true);
    }
}

// --- rendering ----------------------------------------------------------

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls)
        e.className = cls;
    if (text !== undefined)
        e.textContent = text;
    return e;
}

function colour(id) {
    const p = state.points.get(id);
    if (p)
        return tribeColour(p.tribe);
    let h = 0;
    for (const ch of String(id))
        h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
}

function tribeColour(t) {
    return PALETTE[Math.abs(Number(t) || 0) % PALETTE.length];
}

// A cover: the catalogue's image when it has one and it loads, else a
// coloured card with the title's initials.
function cover(b) {
    const box = el('div', 'cover');
    box.setAttribute('aria-hidden', 'true');
    const placeholder = () => {
        box.replaceChildren();
        box.classList.add('placeholder');
        box.style.background = colour(b.book_id);
        const words = (b.title || String(b.book_id)).split(/\s+/)
                          .filter((w) => /\w/.test(w) && !/^(the|a|an)$/i.test(w));
        box.append(el('span', '', words.slice(0, 2).map((w) => w[0].toUpperCase()).join('')));
    };
    const show = (url) => {
        if (!/^https?:\/\//i.test(url || ''))
            return;
        const img = el('img');
        img.alt = '';
        img.loading = 'lazy';
        img.referrerPolicy = 'no-referrer';
        img.onerror = placeholder;
        img.src = url;
        box.classList.remove('placeholder');
        box.style.background = '';
        box.replaceChildren(img);
    };
    placeholder();
    if (b.image_url)
        show(b.image_url);
    else
        book(b.book_id).then((d) => show(d.image_url)).catch(() => {});
    return box;
}

function renderRecs(res) {
    const list = $('recs');
    const recs = res.recommendations || [];
    const before = new Set(state.recIds);
    const first = state.recIds.length === 0;
    let added = 0;
    list.replaceChildren();
    for (const r of recs) {
        const li = el('li', 'book');
        li.dataset.bookId = r.book_id;
        const isNew = !first && !before.has(r.book_id);
        if (isNew) {
            li.classList.add('new');
            added++;
        }
        const body = el('div', 'body');
        const h = el('h3');
        const open = el('button', 'title', r.title || r.book_id);
        open.type = 'button';
        open.addEventListener('click', () => openBook(r));
        h.append(open);
        if (isNew)
            h.append(el('span', 'badge', 'new'));
        body.append(h);
        const sources = (r.sources || []).join(', ');
        body.append(el('p', 'meta',
                       `score ${Number(r.score).toFixed(3)}${sources ? ' · ' + sources : ''}`));
        if (r.explanation)
            body.append(el('p', 'why', r.explanation));
        body.append(rater(r));
        li.append(cover(r), body);
        list.append(li);
    }
    if (!recs.length)
        list.append(el('li', 'empty', 'No recommendations.'));
    state.recIds = recs.map((r) => r.book_id);
    return first ? -1 : added;
}

function rater(b) {
    const g = el('div', 'rate');
    g.setAttribute('role', 'group');
    g.setAttribute('aria-label', `Rate ${b.title || b.book_id}`);
    g.append(el('span', 'rate-label', 'Rate'));
    for (let v = 1; v <= 5; v++) {
        const btn = el('button', 'star', String(v));
        btn.type = 'button';
        btn.setAttribute('aria-label', `${v} of 5`);
        btn.addEventListener('click', () => interact(b, 'rating', v));
        g.append(btn);
    }
    return g;
}

const VERB = {click: 'opened', view: 'viewed', rating: 'rated', purchase: 'bought'};

function renderHistory(user) {
    const list = $('history');
    list.replaceChildren();
    let items;
    if (state.anon) {
        items = state.session.slice().reverse().map((s) => ({...s, type: 'click'}));
    } else {
        items = user.history || []; // the server's order: most recent first
    }
    state.history = new Set(items.map((h) => h.book_id));
    for (const h of items) {
        const li = el('li');
        li.dataset.bookId = h.book_id;
        const dot = el('span', 'dot');
        dot.style.background = colour(h.book_id);
        dot.setAttribute('aria-hidden', 'true');
        let what = VERB[h.type] || h.type;
        if (h.type === 'rating' && h.value !== undefined)
            what += ` ${h.value}`;
        li.append(dot, el('span', 'h-title', h.title || h.book_id), el('span', 'h-what', what));
        list.append(li);
    }
    $('history-empty').hidden = items.length > 0;
}

// Details of a book (and its neighbours) beside the list; opening one sends
// the click.
async function openBook(b) {
    const panel = $('details');
    const body = $('details-body');
    panel.hidden = false;
    body.replaceChildren(el('p', 'hint', 'Loading...'));
    const sent = interact(b, 'click', 1);
    try {
        const [d, sim] = await Promise.all([
            book(b.book_id),
            api(`/api/books/${enc(b.book_id)}/similar?n=5`),
        ]);
        body.replaceChildren();
        const head = el('div', 'details-head');
        const info = el('div');
        info.append(el('h3', '', d.title || d.book_id));
        const authors = Array.isArray(d.authors) ? d.authors.join(', ') : d.authors;
        if (authors)
            info.append(el('p', 'meta', `by ${authors}`));
        const facts = [];
        if (d.year)
            facts.push(String(d.year));
        const genre = d.genre || (Array.isArray(d.tags) ? d.tags.slice(0, 3).join(', ') : d.tags);
        if (genre)
            facts.push(genre);
        const tribe = d.tribe_name || state.tribeNames.get(String(d.tribe));
        if (tribe)
            facts.push(`tribe: ${tribe}`);
        if (facts.length)
            info.append(el('p', 'meta', facts.join(' · ')));
        head.append(cover({...d, book_id: b.book_id}), info);
        body.append(head, el('h4', '', 'Similar books'));
        const ul = el('ul', 'similar');
        for (const s of sim.similar || sim.books || sim.recommendations || []) {
            const li = el('li');
            const btn = el('button', 'link', s.title || s.book_id);
            btn.type = 'button';
            btn.addEventListener('click', () => openBook(s));
            li.append(btn);
            ul.append(li);
        }
        body.append(ul);
    } catch (e) {
        body.replaceChildren(el('p', 'error', `Could not load the book: ${e.message}`));
    }
    await sent;
}

// --- the tribe map -----------------------------------------------------

const MAP_W = 640, MAP_H = 420, PAD = 12;

async function loadMap() {
    let t;
    try {
        t = await api('/api/tribes');
    } catch (e) {
        $('map').replaceChildren(el('p', 'error', `No tribe map: ${e.message}`));
        return;
    }
    for (const tr of t.tribes || [])
        state.tribeNames.set(String(tr.id), tr.name);
    const pts = t.points || [];
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of pts) {
        x0 = Math.min(x0, p.x), x1 = Math.max(x1, p.x);
        y0 = Math.min(y0, p.y), y1 = Math.max(y1, p.y);
    }
    const sx = (MAP_W - 2 * PAD) / ((x1 - x0) || 1), sy = (MAP_H - 2 * PAD) / ((y1 - y0) || 1);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${MAP_W} ${MAP_H}`);
    svg.setAttribute('aria-hidden', 'true');
    const dots = document.createElementNS(SVG, 'g');
    for (const p of pts) {
        const q = {x: PAD + (p.x - x0) * sx, y: MAP_H - PAD - (p.y - y0) * sy, tribe: p.tribe,
                   title: p.title};
        state.points.set(p.book_id, q);
        const c = document.createElementNS(SVG, 'circle');
        c.setAttribute('cx', q.x.toFixed(1));
        c.setAttribute('cy', q.y.toFixed(1));
        c.setAttribute('r', '3');
        c.setAttribute('fill', tribeColour(p.tribe));
        c.dataset.bookId = p.book_id;
        dots.append(c);
    }
    const marks = document.createElementNS(SVG, 'g');
    marks.id = 'map-marks';
    svg.append(dots, marks);
    // one listener for all points: the title of the point under the pointer
    svg.addEventListener('mouseover', (ev) => {
        const id = ev.target.dataset && ev.target.dataset.bookId;
        const p = id !== undefined && state.points.get(id);
        $('map-tip').textContent =
            p ? `${p.title} (${state.tribeNames.get(String(p.tribe)) || 'tribe ' + p.tribe})` : '';
    });
    svg.addEventListener('click', (ev) => {
        const id = ev.target.dataset && ev.target.dataset.bookId;
        const p = id !== undefined && state.points.get(id);
        if (p && (state.reader || state.anon))
            openBook({book_id: id, title: p.title});
    });
    $('map').replaceChildren(svg);
    $('map').setAttribute('aria-label',
                          `Map of ${pts.length} books in ${(t.tribes || []).length} tribes`);

    const legend = $('legend');
    legend.replaceChildren();
    for (const tr of t.tribes || []) {
        const li = el('li');
        const sw = el('span', 'swatch');
        sw.style.background = tribeColour(tr.id);
        sw.setAttribute('aria-hidden', 'true');
        li.append(sw, el('span', '', tr.name), el('span', 'size', ` ${tr.size}`));
        legend.append(li);
    }
    drawHighlights();
}

// The reader's history (filled, ringed black) and the list shown (hollow
// rings) on top of the map.
function drawHighlights() {
    const marks = document.getElementById('map-marks');
    if (!marks)
        return;
    marks.replaceChildren();
    const ring = (id, cls) => {
        const p = state.points.get(id);
        if (!p)
            return;
        const c = document.createElementNS(SVG, 'circle');
        c.setAttribute('cx', p.x.toFixed(1));
        c.setAttribute('cy', p.y.toFixed(1));
        c.setAttribute('r', '6');
        c.setAttribute('class', cls);
        c.setAttribute('fill', cls === 'mark-history' ? tribeColour(p.tribe) : 'none');
        c.setAttribute('stroke', cls === 'mark-history' ? '#000' : tribeColour(p.tribe));
        c.dataset.bookId = id;
        marks.append(c);
    };
    for (const id of state.recIds)
        ring(id, 'mark-rec');
    for (const id of state.history)
        ring(id, 'mark-history');
}

// --- wiring ------------------------------------------------------------

function init() {
    $('hour').value = new Date().getHours();
    if (window.matchMedia && window.matchMedia('(max-width: 600px)').matches)
        $('device').value = 'mobile';
    $('reader-form').addEventListener('submit', (ev) => {
        ev.preventDefault();
        startReader($('reader-id').value);
    });
    $('anon-start').addEventListener('click', startAnonymous);
    for (const b of document.querySelectorAll('[data-reader]'))
        b.addEventListener('click', () => startReader(b.dataset.reader));
    for (const id of ['device', 'hour', 'count'])
        $(id).addEventListener('change', () => {
            if (state.reader || state.anon)
                refresh();
        });
    loadMap();
    const m = /^#reader=(.+)$/.exec(location.hash);
    if (m)
        startReader(decodeURIComponent(m[1]));
    else if (location.hash === '#anonymous')
        startAnonymous();
}

init();
