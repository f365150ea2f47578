// An ordinary openai SDK script: no proxy or CA code. sluicectl run makes it go through sluice.
import OpenAI from 'openai';

const client = new OpenAI(); // reads OPENAI_API_KEY (the phantom)
const chat = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'say hi' }] });
console.log(`chat: ${chat.choices[0].message.content}`);

const response = await client.responses.create({ model: 'gpt-5', input: 'say hi' });
console.log(`responses: ${response.output_text}`);

let deltas = 0;
let text = '';
const stream = await client.responses.create({ model: 'gpt-5', input: 'say hi, streamed', stream: true });
for await (const event of stream) {
  if (event.type === 'response.output_text.delta') {
    deltas++;
    text += event.delta;
  }
}
console.log(`responses stream (${deltas} deltas): ${text}`);
