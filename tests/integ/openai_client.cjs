// OpenAI's own client library (npm "openai") against `lethe serve`:
//   node openai_client.cjs BASE_URL MODEL
// lists the models, completes and chats (plain and streamed, greedy, so
// that a streamed answer must equal the plain one), and checks that a bad
// request surfaces as the client's APIError with status 400 and a missing
// model as 404. LETHE_TOKEN, when set, is the API key. Prints one line per
// check and exits 1 when any failed.
'use strict';
const OpenAI = require('openai');

const [base, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + '/v1', apiKey: process.env.LETHE_TOKEN || 'none',
                            maxRetries: 0, timeout: 60000 });
let failed = 0;
function check(ok, what, detail) {
    console.log((ok ? 'ok   ' : 'FAIL ') + what + (ok || detail === undefined ? '' : ': ' + detail));
    if (!ok) failed++;
}

async function status(p) {
    try { await p; return 0; } catch (e) { return e instanceof OpenAI.APIError ? e.status : -1; }
}

async function main() {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    check(ids.includes(model), 'models.list names the model', JSON.stringify(ids));

    const question = 'Question: Where was the author born?\nAnswer:';
    const c = await client.completions.create({ model, prompt: question, max_tokens: 10,
                                                temperature: 0 });
    const text = c.choices[0].text;
    check(typeof text === 'string' && text.length > 0, 'completions.create returns text');
    check(c.object === 'text_completion' && c.usage.completion_tokens > 0 &&
          c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens,
          'completion object and usage', JSON.stringify(c));
    check(['stop', 'length'].includes(c.choices[0].finish_reason), 'finish_reason');

    let streamed = '', chunks = 0;
    const cs = await client.completions.create({ model, prompt: question, max_tokens: 10,
                                                 temperature: 0, stream: true });
    for await (const ch of cs) { streamed += ch.choices[0]?.text || ''; chunks++; }
    check(streamed === text, 'a streamed completion equals the plain one',
          JSON.stringify([streamed, text]));
    check(chunks >= 2, 'the completion streams in pieces', chunks);

    const messages = [{ role: 'user', content: 'Where was the author born?' }];
    const chat = await client.chat.completions.create({ model, messages, max_tokens: 10,
                                                       temperature: 0 });
    const answer = chat.choices[0].message.content;
    check(chat.object === 'chat.completion' && chat.choices[0].message.role === 'assistant' &&
          typeof answer === 'string', 'chat.completions.create returns a message',
          JSON.stringify(chat));

    let deltas = '', roles = 0, usage = null;
    const stream = await client.chat.completions.create({
        model, messages, max_tokens: 10, temperature: 0, stream: true,
        stream_options: { include_usage: true } });
    for await (const ch of stream) {
        const d = ch.choices[0]?.delta;
        if (d?.role) roles++;
        deltas += d?.content || '';
        if (ch.usage) usage = ch.usage;
    }
    check(deltas === answer, 'a streamed chat equals the plain one', JSON.stringify([deltas, answer]));
    check(roles === 1, 'the role comes once', roles);
    check(usage && usage.completion_tokens === chat.usage.completion_tokens,
          'the streamed usage', JSON.stringify(usage));

    const seeded = { model, prompt: question, max_tokens: 8, temperature: 1, seed: 7 };
    const s1 = await client.completions.create(seeded), s2 = await client.completions.create(seeded);
    check(s1.choices[0].text === s2.choices[0].text, 'the same seed samples the same text');

    check(await status(client.completions.create({ model, prompt: question, max_tokens: 100000 })) === 400,
          'max_tokens over the limit is a 400 APIError');
    check(await status(client.chat.completions.create({ model, messages: [] })) === 400,
          'an empty conversation is a 400 APIError');
    check(await status(client.completions.create({ model: 'no-such-model', prompt: 'x' })) === 404,
          'an unknown model is a 404 APIError');
}

main().then(() => process.exit(failed ? 1 : 0),
            (e) => { console.log('FAIL ' + (e && e.stack || e)); process.exit(1); });
