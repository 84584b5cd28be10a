// app.js: the logic of the page `bookrec serve` answers at GET /. It talks
// only to the server's JSON API (docs/api.md): the model's readers searched
// by id prefix and browsed a page at a time, a reader's history and
// recommendations, an event POSTed when a book is opened or rated (then the
// list is fetched again, and what changed is marked), an anonymous session
// kept in the page and sent to the session endpoint, the tribe map drawn as
// inline SVG, and the model versions with their evaluation figures. No
// framework, no build step: every text goes in through textContent, never
// as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
// Ten colours with at least 4.5:1 contrast against white (map dots on the
// white map, and white letters on a placeholder cover).
const PALETTE = ['#1f5fa8', '#c0392b', '#2e7d32', '#8e44ad', '#b35900', '#00838f', '#ad1457',
                 '#5d6d1e', '#4e342e', '#37474f'];
// A cover or history dot whose tribe is not known yet (its /api/books/{id}
// is on the way): a grey of the same contrast, never a guess that would be
// wrong once the tribe arrives.
const NO_TRIBE = '#6b6b6b';
// The API's largest n (BR_SERVE_N_MAX in serve.h; no endpoint reports it).
const N_MAX = 100;
const READERS_PAGE = 20;   // readers listed at a time (the API's default limit)
const FOLD_CHARS = 280;    // a longer description is folded behind "more"

const state = {
    reader: null,     // reader id, or null in an anonymous session
    anon: false,
    session: [],      // anonymous session: [{book_id, title}], oldest first
    recIds: [],       // book ids of the list shown, to mark what a new list adds
    history: new Set(),
    points: new Map(), // book_id -> {x, y, tribe, title} from /api/tribes
    tribeNames: new Map(),
    books: new Map(),  // book_id -> promise of /api/books/{id}
    modelsFor: null,   // the version the models panel was loaded for
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
    const n = Math.min(N_MAX, Math.max(1, parseInt($('count').value, 10) || 10));
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
        if (state.modelsFor && recs.model_version && recs.model_version !== state.modelsFor)
            loadModels(); // a reload swapped another version in: the panel follows
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
    markReader();
    $('recs-for').textContent = `for reader ${id}`;
    history.replaceState(null, '', `#reader=${enc(id)}`);
    refresh();
}

function startAnonymous() {
    reset({reader: null, anon: true});
    markReader();
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

// -1 (or nothing): a book without a tribe.
function tribeColour(t) {
    return Number.isInteger(t) && t >= 0 ? PALETTE[t % PALETTE.length] : NO_TRIBE;
}

// The book's tribe as far as the page knows it: from the item itself (when
// the API puts it there), the tribe map, or its /api/books/{id}.
function knownTribe(b) {
    if (Number.isInteger(b.tribe))
        return b.tribe;
    const p = state.points.get(b.book_id);
    return p ? p.tribe : undefined;
}

// Paints node's background in the book's tribe colour: at once when the
// tribe is known, else grey until /api/books/{id} says (the list can render
// before /api/tribes or the book answers, in any order).
function paintTribe(node, b) {
    const set = (t) => {
        node.style.background = tribeColour(t);
        if (Number.isInteger(t))
            node.dataset.tribe = String(t);
    };
    const t = knownTribe(b);
    set(t);
    if (t === undefined)
        book(b.book_id).then((d) => set(d.tribe)).catch(() => {});
}

const ARTICLE = /^(the|a|an)$/i;

// A placeholder cover's letters: the first letter (or digit) of the first
// two words of the title, leaving out a parenthesised or bracketed series
// ("Inferno (Robert Langdon, #4)" is "I"), punctuation, and a leading
// article when other words remain ("The Silent Garden" is "SG"). Any script:
// a letter keeps its combining marks, a title without spaces gives its first
// letter. A title of punctuation only gives its first character.
function initials(title) {
    const t = String(title || '').normalize('NFC');
    const words = (s) => s.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w));
    let ws = words(t.replace(/\([^)]*\)?|\[[^\]]*\]?/g, ' '));
    if (!ws.length)
        ws = words(t); // a title that is all series
    if (!ws.length)
        return Array.from(t.trim())[0] || '?';
    const main = ws.filter((w) => !ARTICLE.test(w.replace(/[^\p{L}]/gu, '')));
    if (main.length)
        ws = main;
    return ws.slice(0, 2).map((w) => {
        const c = w.match(/[\p{L}\p{N}]\p{M}*/u)[0];
        const u = c.toUpperCase(); // "ß" would become two letters: kept as is
        return u.length === c.length ? u : c;
    }).join('');
}

// A cover: the catalogue's image when it has one and it loads, else a card
// in the book's tribe colour with the title's initials.
function cover(b) {
    const box = el('div', 'cover');
    box.setAttribute('aria-hidden', 'true');
    const placeholder = () => {
        box.replaceChildren(el('span', '', initials(b.title || String(b.book_id))));
        box.classList.add('placeholder');
        paintTribe(box, b);
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
        paintTribe(dot, h);
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
        // tags: an array, or one string `|`-separated as in the catalogue
        const tags = Array.isArray(d.tags) ? d.tags : String(d.tags || '').split('|');
        const genre = d.genre || tags.filter((x) => x).slice(0, 3).join(', ');
        if (genre)
            facts.push(genre);
        const tribe = d.tribe_name || state.tribeNames.get(String(d.tribe));
        if (tribe)
            facts.push(`tribe: ${tribe}`);
        if (facts.length)
            info.append(el('p', 'meta', facts.join(' · ')));
        head.append(cover({...d, book_id: b.book_id}), info);
        body.append(head);
        if (d.description)
            body.append(description(d.description));
        body.append(el('h4', '', 'Similar books'));
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

let descriptions = 0; // ids tying a "more" button to its text

// A book's description; a long one folded to its first FOLD_CHARS
// characters (at a space) behind a "more" button that unfolds it.
function description(text) {
    const box = el('div', 'description');
    const p = el('p', 'desc-text');
    box.append(p);
    const chars = Array.from(text); // code points: a cut never splits one
    if (chars.length <= FOLD_CHARS) {
        p.textContent = text;
        return box;
    }
    let cut = chars.lastIndexOf(' ', FOLD_CHARS);
    if (cut < FOLD_CHARS / 2)
        cut = FOLD_CHARS;
    const short = chars.slice(0, cut).join('').replace(/[\s.,;:]+$/, '') + '\u2026';
    p.id = `desc-${++descriptions}`;
    const more = el('button', 'link more');
    more.type = 'button';
    more.setAttribute('aria-controls', p.id);
    const fold = (open) => {
        p.textContent = open ? text : short;
        more.textContent = open ? 'less' : 'more';
        more.setAttribute('aria-expanded', String(open));
    };
    more.addEventListener('click', () => fold(more.getAttribute('aria-expanded') !== 'true'));
    fold(false);
    box.append(more);
    return box;
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
    dots.id = 'map-dots';
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

// The reader's history (discs in the tribe colour ringed black) and the list
// shown (black rings) on top of the map. Each mark sits on a white halo and
// the other points fade while there are marks: on a map of thousands of
// points a mark in a tribe colour alone disappears among its neighbours.
function drawHighlights() {
    const marks = document.getElementById('map-marks');
    if (!marks)
        return;
    marks.replaceChildren();
    const circle = (p, r, attrs) => {
        const c = document.createElementNS(SVG, 'circle');
        c.setAttribute('cx', p.x.toFixed(1));
        c.setAttribute('cy', p.y.toFixed(1));
        c.setAttribute('r', String(r));
        for (const [k, v] of Object.entries(attrs))
            c.setAttribute(k, v);
        marks.append(c);
        return c;
    };
    const mark = (id, cls) => {
        const p = state.points.get(id);
        if (!p)
            return;
        const hist = cls === 'mark-history';
        const r = hist ? 6 : 8;
        circle(p, r, {class: 'mark-halo', fill: hist ? '#fff' : 'none', stroke: '#fff'});
        const c = circle(p, r, {class: cls, fill: hist ? tribeColour(p.tribe) : 'none',
                                stroke: '#000'});
        c.dataset.bookId = id;
        if (!hist) // the book's own point, unfaded, inside its ring
            circle(p, 3, {class: 'mark-dot', fill: tribeColour(p.tribe)});
    };
    // the list last: on top where a recommendation lies under a read book
    for (const id of state.history)
        mark(id, 'mark-history');
    for (const id of state.recIds)
        mark(id, 'mark-rec');
    const dots = document.getElementById('map-dots');
    if (dots)
        dots.classList.toggle('faded', marks.childElementCount > 0);
}

// --- the readers: search by id prefix, browse a page at a time --------

const readers = {q: '', offset: 0, total: 0, seq: 0, timer: 0};

async function listReaders(q, offset) {
    const seq = ++readers.seq; // only the latest answer is shown
    const ul = $('readers-list');
    let res;
    try {
        res = await api(`/api/users?q=${enc(q)}&limit=${READERS_PAGE}&offset=${offset}`);
    } catch (e) {
        if (seq !== readers.seq)
            return;
        ul.replaceChildren();
        $('readers-count').textContent = `Could not list the readers: ${e.message}`;
        $('readers-prev').disabled = $('readers-next').disabled = true;
        return;
    }
    if (seq !== readers.seq)
        return;
    const users = res.users || [];
    const total = Number(res.total) || 0;
    offset = Number(res.offset) || 0;
    Object.assign(readers, {q, offset, total});
    const hadFocus = ul.contains(document.activeElement);
    ul.replaceChildren();
    for (const u of users) {
        const id = String(u.user_id);
        const li = el('li');
        const b = el('button', 'link', id);
        b.type = 'button';
        b.dataset.reader = id;
        b.addEventListener('click', () => startReader(id));
        li.append(b);
        ul.append(li);
    }
    markReader();
    const who = `reader${total === 1 ? '' : 's'}${q ? ` whose id starts with "${q}"` : ''}`;
    $('readers-count').textContent = !total ? `No ${who}.`
        : users.length ? `${total} ${who}: ${offset + 1} to ${offset + users.length}.`
        : `${total} ${who}; none from ${offset + 1}.`;
    $('readers-prev').disabled = offset === 0;
    $('readers-next').disabled = offset + users.length >= total;
    // paging with the keyboard: focus stays in the list, not on a disabled button
    const focusLost = document.activeElement && document.activeElement.disabled;
    if ((hadFocus || focusLost) && ul.querySelector('button'))
        ul.querySelector('button').focus();
}

// The reader shown, marked in the list.
function markReader() {
    for (const b of $('readers-list').querySelectorAll('button'))
        if (!state.anon && b.dataset.reader === state.reader)
            b.setAttribute('aria-current', 'true');
        else
            b.removeAttribute('aria-current');
}

function searchReaders() {
    clearTimeout(readers.timer);
    // a short pause so that typing an id asks once, not once a key
    readers.timer = setTimeout(() => listReaders($('reader-id').value.trim(), 0), 150);
}

// Down from the search box into the list; Up/Down within it; Escape back.
function readerKeys(ev) {
    const buttons = [...$('readers-list').querySelectorAll('button')];
    const i = buttons.indexOf(document.activeElement);
    let to = null;
    if (ev.key === 'ArrowDown')
        to = ev.target.id === 'reader-id' ? buttons[0] : buttons[i + 1];
    else if (ev.key === 'ArrowUp' && i >= 0)
        to = i === 0 ? $('reader-id') : buttons[i - 1];
    else if (ev.key === 'Escape' && i >= 0)
        to = $('reader-id');
    if (to) {
        ev.preventDefault();
        to.focus();
    }
}

// --- the model versions ------------------------------------------------

// Evaluation figures by name, in this order (then any other "name@k").
const FIGURES = ['ndcg', 'precision', 'recall', 'map', 'coverage'];

function figureRank(k) {
    const i = FIGURES.indexOf(k.split('@')[0]);
    return i < 0 ? FIGURES.length : i;
}

function plain(v) {
    return v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
}

// Name/value pairs of an object as a definition list.
function pairs(title, obj) {
    const box = el('div', 'pairs');
    box.append(el('h4', '', title));
    const dl = el('dl');
    for (const [k, v] of Object.entries(obj)) {
        dl.append(el('dt', '', k), el('dd', '', plain(v)));
    }
    box.append(dl);
    return box;
}

async function loadModels() {
    let m;
    try {
        m = await api('/api/models');
    } catch (e) {
        $('models-note').textContent = `Could not list the model versions: ${e.message}`;
        return;
    }
    state.modelsFor = m.current;
    const versions = m.versions || [];
    const figs = [...new Set(versions.flatMap((v) => Object.keys(v.evaluation || {})
                                                          .filter((k) => k.includes('@'))))];
    figs.sort((a, b) => figureRank(a) - figureRank(b) || (a < b ? -1 : a > b ? 1 : 0));
    const th = (text, scope, cls) => {
        const h = el('th', cls, text);
        h.scope = scope;
        return h;
    };
    const head = el('tr');
    head.append(th('Version', 'col'), th('Created (UTC)', 'col'), th('Books', 'col', 'num'),
                th('Readers', 'col', 'num'), th('Ratings', 'col', 'num'));
    for (const f of figs.length ? figs : ['Evaluation'])
        head.append(th(f, 'col', figs.length ? 'num' : ''));
    head.append(th('Details', 'col'));
    $('models').tHead.replaceChildren(head);

    const rows = [];
    for (const v of versions) {
        const current = v.current === true || v.id === m.current;
        const tr = el('tr');
        tr.dataset.version = v.id;
        const name = th(String(v.id), 'row');
        if (current) {
            tr.classList.add('current');
            tr.setAttribute('aria-current', 'true');
            name.append(el('span', 'badge', 'current'));
        }
        tr.append(name);
        const t = Number(v.created_at);
        const when = el('td');
        if (Number.isFinite(t) && t > 0) {
            const iso = new Date(t * 1000).toISOString();
            const time = el('time', '', iso.slice(0, 16).replace('T', ' '));
            time.dateTime = iso;
            when.append(time);
        } else {
            when.textContent = '-';
        }
        tr.append(when);
        const counts = v.counts || {};
        for (const k of ['books', 'readers', 'ratings'])
            tr.append(el('td', 'num', counts[k] === undefined ? '-' : plain(counts[k])));
        const ev = v.evaluation;
        if (ev && figs.length) {
            for (const f of figs) {
                const x = ev[f];
                tr.append(el('td', 'num', typeof x === 'number' ? x.toFixed(4) : '-'));
            }
        } else {
            const td = el('td', 'unevaluated', 'not evaluated');
            td.colSpan = Math.max(1, figs.length);
            tr.append(td);
        }
        // the parameters (and how it was evaluated) in a row of their own
        // under the version's, shown on demand
        const extra = el('tr', 'model-extra');
        extra.hidden = true;
        const cell = el('td');
        cell.colSpan = head.cells.length;
        cell.id = `model-extra-${v.id}`;
        const box = el('div', 'model-pairs');
        box.append(pairs('Parameters', v.parameters || {}));
        if (ev)
            box.append(pairs('Evaluation', Object.fromEntries(
                Object.entries(ev).filter(([k]) => !k.includes('@')))));
        cell.append(box);
        extra.append(cell);
        const more = el('button', 'link', 'parameters');
        more.type = 'button';
        more.setAttribute('aria-expanded', 'false');
        more.setAttribute('aria-controls', cell.id);
        more.setAttribute('aria-label', `parameters of ${v.id}`);
        more.addEventListener('click', () => {
            extra.hidden = !extra.hidden;
            more.setAttribute('aria-expanded', String(!extra.hidden));
        });
        const td = el('td');
        td.append(more);
        tr.append(td);
        rows.push(tr, extra);
    }
    $('models').tBodies[0].replaceChildren(...rows);
    $('models-note').textContent = versions.length ? '' : 'No model version published.';
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
    $('reader-id').addEventListener('input', searchReaders);
    $('reader-id').addEventListener('keydown', readerKeys);
    $('readers-list').addEventListener('keydown', readerKeys);
    $('readers-prev').addEventListener('click', () =>
        listReaders(readers.q, Math.max(0, readers.offset - READERS_PAGE)));
    $('readers-next').addEventListener('click', () =>
        listReaders(readers.q, readers.offset + READERS_PAGE));
    listReaders('', 0);
    loadModels();
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
