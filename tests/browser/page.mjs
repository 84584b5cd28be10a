// page.mjs: drives the page `bookrec serve` answers at / in headless
// Chromium (playwright-core, Debian's /usr/bin/chromium) against a running
// server, the way a person would: browse the readers and search for reader
// 5 by typing, read their history and recommendations, open a book (its
// description shown) and rate another and see the list change, ask for 100
// books, the tribe map drawn with the history and the list marked so they
// stand out, the model versions with their evaluation figures, a new
// reader's cold start, the keyboard path, and an anonymous session; then a
// second page whose /api/tribes is held back until the anonymous list has
// rendered (the covers still take their tribe's colour), where a posted book
// titled with a series in parentheses is opened from the map (its initials,
// its long description folded). Every expectation is checked against the
// server's own API answers, not against fixed values.
// Run by page.sh (which starts the server): node page.mjs BASE_URL API_KEY [SCREENSHOT.png]
import {chromium} from 'playwright-core';

const base = process.argv[2];
const key = process.argv[3]; // the server's X-API-Key for the write endpoints
const shot = process.argv[4];
const WAIT = {timeout: 30000};
let passes = 0, fails = 0;

function check(what, ok, detail) {
    if (ok) {
        passes++;
    } else {
        fails++;
        console.log(`FAIL: ${what}${detail !== undefined ? ': ' + detail : ''}`);
    }
}

async function api(path, body) {
    const opts = body === undefined ? {} : {
        method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-API-Key': key},
        body: JSON.stringify(body),
    };
    const res = await fetch(base + path, opts);
    if (!res.ok)
        throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
}

// A book posted for the second page: a series in parentheses after the
// title, and a description long enough to be folded.
const SERIES = {
    book_id: 'page-test-series',
    title: 'Inferno (Robert Langdon, #4)',
    authors: 'Page Test',
    genre: 'Thriller',
    description: 'A professor wakes in a hospital with no memory of the last two days. ' +
        'A riddle hidden in an old painting leads him across the city, from a museum ' +
        'to a palace to a baptistery, while a scientist who believes the world is too ' +
        'crowded has left a plague somewhere beneath the water. Each clue is a line of ' +
        'a poem; each line costs a day. By the end he has to choose whom to believe.',
};

const recIds = (page) => page.$$eval('#recs li.book', (lis) => lis.map((li) => li.dataset.bookId));
const readerIds = (page) => page.$$eval('#readers-list button', (bs) => bs.map((b) => b.textContent));
const historyIds = (page) => page.$$eval('#history li', (lis) => lis.map((li) => li.dataset.bookId));
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// Waits until fn(arg) holds in the page; a page that never gets there
// fails with `what` (the wait is for the page, not a timing assertion).
async function until(page, what, fn, arg) {
    try {
        await page.waitForFunction(fn, arg, {timeout: 30000});
    } catch (e) {
        throw new Error(`never happened: ${what} (${e.message.split('\n')[0]})`);
    }
}

// Waits until the list of recommendations is not `before` (and not empty).
async function listChanged(page, before) {
    await until(page, before.length ? 'the list changed' : 'a list shown', (prev) => {
        const ids = [...document.querySelectorAll('#recs li.book')].map((li) => li.dataset.bookId);
        return ids.length > 0 && ids.join(',') !== prev;
    }, before.join(','));
    return recIds(page);
}

let browser;

async function main() {
    browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
    });
    const posted = await api('/api/books', SERIES);
    check('a book posted', posted.book_id === SERIES.book_id, JSON.stringify(posted));
    const page = await browser.newPage({viewport: {width: 1200, height: 1000}});
    const errors = [], outside = [], sessions = [], events = [], recUrls = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('request', (r) => {
        if (!r.url().startsWith(base) && !r.url().startsWith('data:'))
            outside.push(r.url());
        if (r.url().includes('/api/recommendations/session'))
            sessions.push(JSON.parse(r.postData()));
        if (r.url().endsWith('/api/events'))
            events.push(JSON.parse(r.postData()));
        if (r.url().includes('/api/recommendations/user/'))
            recUrls.push(new URL(r.url()));
    });

    // the page and its map
    const res = await page.goto(base + '/');
    check('GET / is 200', res.status() === 200, res.status());
    check('title', (await page.title()) === 'bookrec');
    const tribes = await api('/api/tribes');
    await page.waitForSelector('#map svg g:first-child circle', WAIT);
    const drawn = await page.$$eval('#map svg g:first-child circle', (cs) => cs.length);
    check('map: one point per book', drawn === tribes.points.length && drawn > 0, drawn);
    const legend = await page.$$eval('#legend li', (lis) => lis.map((li) => li.textContent));
    check('legend: one entry per tribe', legend.length === tribes.tribes.length, legend.length);
    check('legend names the tribes', tribes.tribes.every((t, i) => legend[i].includes(t.name)));
    const colours = await page.$$eval('#map svg g:first-child circle', (cs) => new Set(cs.map((c) => c.getAttribute('fill'))).size);
    check('map: coloured by tribe', colours === Math.min(tribes.tribes.length, 10), colours);
    const p0 = tribes.points[tribes.points.length - 1]; // drawn last: on top
    await page.hover(`#map circle[data-book-id="${p0.book_id}"]`);
    check('map: hover shows the title', (await page.textContent('#map-tip')).includes(p0.title),
          await page.textContent('#map-tip'));

    // the model versions: newest first, the one served marked, the figures
    // of the evaluated one (page.sh trained v000001 plain, v000002 --eval)
    const models = await api('/api/models');
    await until(page, 'the models listed', (n) => document.querySelectorAll('#models tbody tr[data-version]').length === n,
                models.versions.length);
    const rows = await page.$$eval('#models tbody tr[data-version]', (trs) => trs.map((tr) => ({
        id: tr.dataset.version, current: tr.getAttribute('aria-current') === 'true', text: tr.textContent,
        cells: [...tr.cells].map((c) => c.textContent.trim()),
    })));
    const heads = await page.$$eval('#models thead th', (ths) => ths.map((th) => th.textContent.trim()));
    check('models: two versions', models.versions.length === 2, models.versions.length);
    check('models: every version, newest first', same(rows.map((r) => r.id), models.versions.map((v) => v.id)),
          rows.map((r) => r.id));
    check('models: the current one marked, and only it',
          same(rows.filter((r) => r.current).map((r) => r.id), [models.current]) &&
          rows.every((r) => r.current === /current/.test(r.cells[0])), JSON.stringify(rows.map((r) => r.cells[0])));
    for (const v of models.versions) {
        const row = rows.find((r) => r.id === v.id);
        if (!row)
            continue;
        check(`models: ${v.id} counts`, row.cells[2] === String(v.counts.books) &&
              row.cells[3] === String(v.counts.readers) && row.cells[4] === String(v.counts.ratings), row.cells);
        if (v.evaluation) {
            const col = heads.indexOf('ndcg@10');
            check(`models: ${v.id} ndcg@10 shown`, col > 0 && row.cells[col] === v.evaluation['ndcg@10'].toFixed(4),
                  `${heads} | ${row.cells}`);
        } else {
            check(`models: ${v.id} not evaluated`, /not evaluated/.test(row.text), row.text);
        }
    }
    check('models: one evaluated, one not', models.versions.filter((v) => v.evaluation).length === 1);

    // the readers: browsed a page at a time, in the API's order
    const all = await api('/api/users?limit=20');
    await until(page, 'the readers listed', (n) => document.querySelectorAll('#readers-list button').length === n,
                all.users.length);
    check('readers: the first page', same(await readerIds(page), all.users.map((u) => u.user_id)));
    check('readers: the count said', (await page.textContent('#readers-count')).includes(String(all.total)));
    const next = await api('/api/users?limit=20&offset=20');
    await page.click('#readers-next');
    await until(page, 'the next page of readers', (first) => {
        const b = document.querySelector('#readers-list button');
        return b && b.textContent === first;
    }, next.users[0].user_id);
    check('readers: the second page', same(await readerIds(page), next.users.map((u) => u.user_id)));
    check('readers: Previous enabled on the second page', await page.isEnabled('#readers-prev'));

    // reader 5: found by typing its id, reached with the keyboard
    const found = await api('/api/users?q=5&limit=20');
    await page.focus('#reader-id');
    await page.keyboard.type('5');
    await until(page, 'the readers starting with 5', (want) =>
        [...document.querySelectorAll('#readers-list button')].map((b) => b.textContent).join() === want,
        found.users.map((u) => u.user_id).join());
    check('search: the API\'s readers', found.total > 0 && found.users.every((u) => u.user_id.startsWith('5')));
    check('search: the count said', (await page.textContent('#readers-count')).includes(String(found.total)));
    await page.keyboard.press('ArrowDown');
    check('search: Down reaches the first reader',
          (await page.evaluate(() => document.activeElement.textContent)) === found.users[0].user_id);
    check('search: reader 5 listed first', found.users[0].user_id === '5', found.users[0].user_id);
    await page.keyboard.press('Enter');

    // reader 5: history and recommendations with explanations
    let ids = await listChanged(page, []);
    check('search: reader 5 shown', (await page.textContent('#recs-for')).includes('reader 5'));
    check('search: reader 5 marked in the list',
          (await page.getAttribute('#readers-list button[data-reader="5"]', 'aria-current')) === 'true');
    const user = await api('/api/users/5');
    check('reader 5 is known', user.known === true);
    await until(page, 'the history shown', (n) => document.querySelectorAll('#history li').length === n,
                user.history.length);
    const hist = await historyIds(page);
    check('history: every event of the reader', hist.length > 0 &&
          hist.slice().sort().join() === user.history.map((h) => h.book_id).sort().join());
    const ctx = `device=${await page.inputValue('#device')}&hour=${await page.inputValue('#hour')}`;
    const recs = await api(`/api/recommendations/user/5?n=10&explain=1&${ctx}`);
    check('recommendations: the API\'s list', same(ids, recs.recommendations.map((r) => r.book_id)),
          `${ids} vs ${recs.recommendations.map((r) => r.book_id)}`);
    const whys = await page.$$eval('#recs li.book .why', (ps) => ps.map((p) => p.textContent.trim()));
    check('every recommendation explained', whys.length === ids.length && whys.every((w) => w.length > 0));
    check('explanations are the API\'s', whys[0] === recs.recommendations[0].explanation);
    check('covers drawn', (await page.$$('#recs li.book .cover')).length === ids.length);
    check('model version shown', (await page.textContent('#model-version')) === recs.model_version);
    const marked = await page.$$eval('#map-marks .mark-history', (cs) => cs.length);
    check('map: the history marked', marked === new Set(hist.filter((id) => tribes.points.some((p) => p.book_id === id))).size && marked > 0, marked);
    // the list's rings must stand out among thousands of points in the same
    // colours: black on a white halo, drawn over the history, the other
    // points faded while there are marks
    const rings = await page.evaluate(() => {
        const marks = [...document.querySelectorAll('#map-marks circle')];
        const dots = document.querySelector('#map svg g:first-child');
        const tribeFills = new Set([...dots.querySelectorAll('circle')].map((c) => getComputedStyle(c).fill));
        return {
            n: marks.filter((c) => c.classList.contains('mark-rec')).length,
            lastHistory: marks.map((c) => c.classList.contains('mark-history')).lastIndexOf(true),
            firstRec: marks.findIndex((c) => c.classList.contains('mark-rec')),
            dotsOpacity: Number(getComputedStyle(dots).opacity),
            bad: marks.filter((c) => c.classList.contains('mark-rec')).filter((c) => {
                const st = getComputedStyle(c);
                const halo = marks.find((h) => h.classList.contains('mark-halo') &&
                    h.getAttribute('cx') === c.getAttribute('cx') && h.getAttribute('cy') === c.getAttribute('cy') &&
                    marks.indexOf(h) < marks.indexOf(c));
                const hs = halo && getComputedStyle(halo);
                return tribeFills.has(st.stroke) || st.stroke !== 'rgb(0, 0, 0)' || !hs ||
                    hs.stroke !== 'rgb(255, 255, 255)' || parseFloat(hs.strokeWidth) <= parseFloat(st.strokeWidth) ||
                    Number(c.getAttribute('r')) < 6;
            }).map((c) => c.dataset.bookId),
        };
    });
    check('map: the list ringed', rings.n === new Set(ids.filter((id) => tribes.points.some((p) => p.book_id === id))).size && rings.n > 0, rings.n);
    check('map: the list\'s rings black on a white halo', rings.bad.length === 0, rings.bad);
    check('map: the list\'s rings over the history', rings.firstRec > rings.lastHistory, JSON.stringify(rings));
    check('map: the other points faded', rings.dotsOpacity <= 0.5, rings.dotsOpacity);

    // without the API key the event is refused, said, and nothing changes
    const first = ids[0];
    await page.click(`#recs li[data-book-id="${first}"] .rate button:has-text("4")`);
    await until(page, 'the refused event said', () => document.querySelector('#status.error'));
    check('no key: the refusal is shown', /401|key/i.test(await page.textContent('#status')),
          await page.textContent('#status'));
    check('no key: the list is unchanged', same(await recIds(page), ids));
    check('no key: nothing recorded', (await api('/api/users/5')).history.length === user.history.length);
    await page.fill('#api-key', key);

    // open the first book: a click event, the list fetched again without it
    const firstTitle = await page.textContent(`#recs li[data-book-id="${first}"] button.title`);
    await page.click(`#recs li[data-book-id="${first}"] button.title`);
    let after = await listChanged(page, ids);
    check('opened book gone from the list', !after.includes(first), after);
    check('a click event was sent', events.some((e) => e.user_id === '5' && e.book_id === first && e.type === 'click'));
    await until(page, 'the click in the history', (id) => !!document.querySelector(`#history li[data-book-id="${id}"]`), first);
    check('the click is in the history', (await historyIds(page)).includes(first));
    await page.waitForSelector('#details:not([hidden]) h3', WAIT);
    check('details of the opened book', (await page.textContent('#details h3')) === firstTitle.trim());
    const firstBook = await api(`/api/books/${encodeURIComponent(first)}`);
    await until(page, 'the description shown', () => !!document.querySelector('#details .description'));
    check('details: the description, whole', firstBook.description.length > 0 &&
          (await page.textContent('#details .description p')) === firstBook.description &&
          !(await page.$('#details .description button')), await page.textContent('#details .description'));
    check('new books marked', (await page.$$('#recs li.book.new')).length > 0);
    check('status says what happened', (await page.textContent('#status')).includes('Opened'));

    // rate the (new) first book 5: rated books leave the list too
    ids = after;
    const second = ids[0];
    await page.click(`#recs li[data-book-id="${second}"] .rate button:has-text("5")`);
    after = await listChanged(page, ids);
    check('rated book gone from the list', !after.includes(second), after);
    check('a rating event was sent', events.some((e) => e.book_id === second && e.type === 'rating' && e.value === 5));
    await until(page, 'the rating in the history', (id) => !!document.querySelector(`#history li[data-book-id="${id}"]`), second);
    const hist2 = await historyIds(page);
    check('history newest first', hist2[0] === second, hist2.slice(0, 3));
    if (shot)
        await page.screenshot({path: shot, fullPage: true});

    // 100 books, the API's maximum
    ids = after;
    await page.fill('#count', '100');
    await page.press('#count', 'Tab');
    check('100 books: accepted by the field', await page.$eval('#count', (e) => e.checkValidity()));
    after = await listChanged(page, ids);
    const hundred = await api(`/api/recommendations/user/5?n=100&${ctx}`);
    check('100 books: the API\'s list of 100', hundred.recommendations.length === 100 &&
          same(after, hundred.recommendations.map((r) => r.book_id)), after.length);
    check('100 books: asked for', recUrls.length > 0 && recUrls[recUrls.length - 1].searchParams.get('n') === '100',
          recUrls.length && recUrls[recUrls.length - 1].search);
    await page.fill('#count', '10');
    await page.press('#count', 'Tab');
    await until(page, 'the list back to 10', () => document.querySelectorAll('#recs li.book').length === 10);

    // the keyboard: type a reader id, Enter; a reader the model never saw
    await page.focus('#reader-id');
    await page.fill('#reader-id', '');
    await page.keyboard.type('nobody-here');
    await page.keyboard.press('Enter');
    await until(page, 'a new reader\'s cold start said', () => document.querySelector('#status').textContent.includes('cold-start'));
    ids = await recIds(page);
    check('new reader: cold-start recommendations', ids.length > 0);
    check('new reader: empty history', (await historyIds(page)).length === 0);

    // anonymous: the clicked ids stay in the page and go to the session endpoint
    await page.getByRole('button', {name: 'Start anonymous'}).click();
    await until(page, 'the anonymous session started', () => document.querySelector('#recs-for').textContent.includes('anonymous'));
    ids = await listChanged(page, []);
    const a = ids[0];
    await page.click(`#recs li[data-book-id="${a}"] button.title`);
    after = await listChanged(page, ids);
    check('anonymous: opened book gone', !after.includes(a), after);
    const b = after[0];
    await page.click(`#recs li[data-book-id="${b}"] button.title`);
    const after2 = await listChanged(page, after);
    check('anonymous: second book gone', !after2.includes(b) && !after2.includes(a), after2);
    const last = sessions[sessions.length - 1];
    check('anonymous: the session holds both clicks', last && same(last.book_ids, [a, b]), JSON.stringify(last));
    check('anonymous: no event sent', !events.some((e) => e.book_id === a || e.book_id === b));
    check('anonymous: history shows the clicks', same(await historyIds(page), [b, a]));
    check('anonymous: clicks marked on the map', (await page.$$('#map-marks .mark-history')).length === 2);

    // the one error expected: the console's note of the refused POST
    const unexpected = errors.filter((e) => !/status of 401/.test(e));
    check('no script errors', unexpected.length === 0, unexpected.join(' | '));
    check('no request left the server', outside.length === 0, outside.join(' '));
    await page.close();
    await lateTribes();
}

// Anonymous, with /api/tribes held back until the list has rendered: each
// placeholder cover still takes its book's tribe colour (the map's), not a
// guess. Then the posted book opened from the map: the initials of a title
// with a series in parentheses, its long description folded behind "more".
async function lateTribes() {
    const page = await browser.newPage({viewport: {width: 1200, height: 1000}});
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    let release, asked;
    const held = new Promise((r) => {
        release = r;
    });
    const hit = new Promise((r) => {
        asked = r;
    });
    await page.route('**/api/tribes', async (route) => {
        asked();
        await held;
        await route.continue();
    });
    await page.goto(base + '/#anonymous');
    const ids = await listChanged(page, []);
    let timer;
    await Promise.race([hit, new Promise((r, no) => {
        timer = setTimeout(() => no(new Error('never happened: /api/tribes asked for')), 30000);
    })]).finally(() => clearTimeout(timer));
    check('late tribes: the list drawn before the map', !(await page.$('#map svg')));
    try {
        await until(page, 'every cover painted with a tribe', () =>
            [...document.querySelectorAll('#recs li.book .cover')].every((c) => c.dataset.tribe !== undefined));
    } catch (e) {
        check('late tribes: covers painted before the map', false, e.message);
    }
    const before = await page.$$eval('#recs li.book .cover', (cs) => cs.map((c) => getComputedStyle(c).backgroundColor));
    release();
    await page.waitForSelector('#map svg g:first-child circle', WAIT);
    const want = await page.$$eval('#recs li.book', (lis) => lis.map((li) => {
        const dot = document.querySelector(`#map svg g:first-child circle[data-book-id="${CSS.escape(li.dataset.bookId)}"]`);
        return dot ? getComputedStyle(dot).fill : 'no point';
    }));
    check('late tribes: every cover in its tribe\'s colour', before.length === ids.length && same(before, want),
          `${before} vs ${want}`);
    const tribe = (await api(`/api/books/${encodeURIComponent(ids[0])}`)).tribe;
    const swatch = await page.$$eval('#legend .swatch', (ss, t) => ss[t] && getComputedStyle(ss[t]).backgroundColor, tribe);
    check('late tribes: the legend\'s colour too', before[0] === swatch, `${before[0]} vs ${swatch}`);

    // the posted book, from its point on the map
    await page.dispatchEvent(`#map circle[data-book-id="${SERIES.book_id}"]`, 'click');
    await until(page, 'the posted book opened', (t) => {
        const h = document.querySelector('#details:not([hidden]) h3');
        return h && h.textContent === t;
    }, SERIES.title);
    check('series title: initials of the title alone',
          (await page.textContent('#details .cover.placeholder span')) === 'I',
          await page.textContent('#details .cover'));
    const folded = await page.textContent('#details .description p');
    const more = '#details .description button';
    check('long description: folded', folded.length < SERIES.description.length &&
          SERIES.description.startsWith(folded.slice(0, -1)) && folded.endsWith('\u2026'), folded);
    check('long description: a "more" control',
          (await page.textContent(more)) === 'more' && (await page.getAttribute(more, 'aria-expanded')) === 'false');
    await page.click(more);
    check('long description: unfolded', (await page.textContent('#details .description p')) === SERIES.description &&
          (await page.getAttribute(more, 'aria-expanded')) === 'true');

    // other titles (the function that draws the placeholder covers)
    const titles = {
        'Inferno (Robert Langdon, #4)': 'I',
        'Harry Potter and the Sorcerer\'s Stone (Harry Potter, #1)': 'HP',
        'The Silent Garden 3': 'SG',
        'The Hunger Games [Book 1]': 'HG',
        '2001: A Space Odyssey': '2S',
        '1984': '1',
        '"Surely You\'re Joking, Mr. Feynman!"': 'SY',
        'Война и мир': 'ВИ',
        '百年孤独': '百',
        'الخيميائي (رواية)': 'ا',
        'élan vital': 'ÉV',
        '(Untitled)': 'U',
        'The': 'T',
        '?!': '?',
        '...': '.',
    };
    const names = Object.keys(titles);
    const got = await page.evaluate((ts) => ts.map((t) =>
        typeof initials === 'function' ? initials(t) : 'no initials()'), names);
    const wrong = names.map((t, i) => `${t} -> ${got[i]}`).filter((w, i) => got[i] !== titles[names[i]]);
    check('initials of many titles', wrong.length === 0, wrong.join('; '));
    check('late tribes: no script errors', errors.length === 0, errors.join(' | '));
    await page.close();
}

main().catch((e) => {
    fails++;
    console.log(`FAIL: ${e.stack || e}`);
}).finally(async () => {
    if (browser)
        await browser.close();
    console.log(`page.mjs: ${passes} passed, ${fails} failed`);
    process.exitCode = fails ? 1 : 0;
});
