// Plain Node fetch with no proxy code at all: on Node 20 it ignores HTTPS_PROXY, so only the
// NODE_OPTIONS bootstrap from sluicectl run/env sends it through sluice.
const res = await fetch('https://api.anthropic.com/v1/messages', {
  method: 'POST',
  headers: { 'x-api-key': process.env.ANTHROPIC_API_KEY ?? '', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'claude-test-model', max_tokens: 64, messages: [{ role: 'user', content: 'say hi' }] }),
  signal: AbortSignal.timeout(Number(process.env.FETCH_TIMEOUT_MS ?? 15000)),
});
const body = await res.json();
console.log(`status ${res.status}: ${body.content?.[0]?.text ?? JSON.stringify(body)}`);
