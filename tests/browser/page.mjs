// page.mjs: drives the page `bookrec serve` answers at / in headless
// Chromium (playwright-core, Debian's /usr/bin/chromium) against a running
// server, the way a person would: pick reader 5, read their history and
// recommendations, open a book and rate another and see the list change,
// the tribe map drawn with the history marked, a new reader's cold start,
// the keyboard path, and an anonymous session. Every expectation is checked
// against the server's own API answers, not against fixed values.
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

async function api(path) {
    const res = await fetch(base + path);
    if (!res.ok)
        throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
}

const recIds = (page) => page.$$eval('#recs li.book', (lis) => lis.map((li) => li.dataset.bookId));
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
    const page = await browser.newPage({viewport: {width: 1200, height: 1000}});
    const errors = [], outside = [], sessions = [], events = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('request', (r) => {
        if (!r.url().startsWith(base) && !r.url().startsWith('data:'))
            outside.push(r.url());
        if (r.url().includes('/api/recommendations/session'))
            sessions.push(JSON.parse(r.postData()));
        if (r.url().endsWith('/api/events'))
            events.push(JSON.parse(r.postData()));
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

    // reader 5: history and recommendations with explanations
    await page.getByRole('button', {name: '5', exact: true}).click();
    let ids = await listChanged(page, []);
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
