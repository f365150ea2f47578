// An ordinary @anthropic-ai/sdk script: no proxy or CA code. sluicectl run makes it go through sluice.
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic(); // reads ANTHROPIC_API_KEY (the phantom)
const message = await client.messages.create({
  model: 'claude-test-model',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'say hi' }],
});
console.log(`json: ${message.content.map((b) => (b.type === 'text' ? b.text : '')).join('')}`);

const stream = client.messages.stream({
  model: 'claude-test-model',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'say hi, streamed' }],
});
let deltas = 0;
stream.on('text', () => deltas++);
const final = await stream.finalMessage();
console.log(`stream (${deltas} deltas): ${final.content.map((b) => (b.type === 'text' ? b.text : '')).join('')}`);
