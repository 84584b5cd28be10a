// bert_unicode_table.js: lists the characters utf8proc (Unicode 15.0) calls
// unassigned that this Node's Unicode (17.0 in Node 20) assigns in a way the
// BERT tokenizer sees: Mn (accents, stripped), P (punctuation, split off),
// C (control/format, dropped), Z (whitespace), lower:N (toLowerCase).
// Input: a JSON array of the code points utf8proc calls Cn, e.g. from
//   python3 -c 'import ctypes,json; u=ctypes.CDLL("libutf8proc.so.2");
//     print(json.dumps([c for c in range(128,0x110000) if not 0xD800<=c<=0xDFFF
//     and u.utf8proc_category(c)==0]))' > cn.json
// Usage: node bert_unicode_table.js cn.json > table.json; the table in
// src/text/wordpiece_unicode.h is this output, one C initialiser per entry.
const fs = require("fs");
const cn = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = [];
for (const c of cn) {
  const ch = String.fromCodePoint(c);
  let k = null;
  if (/\p{Mn}/u.test(ch)) k = "Mn";
  else if (/\p{P}/u.test(ch)) k = "P";
  else if (/^\p{Cc}|\p{Cf}|\p{Co}|\p{Cs}$/u.test(ch)) k = "C";
  else if (/\s/u.test(ch)) k = "Z";
  const lo = ch.toLowerCase();
  if (lo !== ch) k = (k ? k + "," : "") + "lower:" + lo.codePointAt(0);
  if (/\p{L}|\p{N}|\p{S}|\p{Mc}|\p{Me}/u.test(ch) && !k) continue; // assigned, splits like a letter: same as Cn for us
  if (k) out.push([c, k]);
}
console.log(JSON.stringify(out));
