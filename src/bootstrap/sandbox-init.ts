/**
 * The first process inside a `sluicectl run --isolate` sandbox (a bubblewrap network namespace with only
 * loopback). It gives the agent the proxy at the address `sluicectl env` names — `127.0.0.1:PORT` inside the
 * namespace — by relaying each connection to the daemon's proxy socket, which is the one file of sluice's
 * state bind-mounted in; then it runs the agent's command and ends with its status.
 *
 *   node sandbox-init.js --listen PORT --socket PATH [--signals-fd N] -- CMD [ARGS…]
 *
 * Signals: `sluicectl` outside cannot see the agent's pid (a new pid namespace), so it writes the names of
 * the signals it receives, one per line, to a pipe passed as fd N; they are delivered to the command. When
 * that pipe closes (sluicectl died) the command gets SIGHUP, as a terminal's processes do when it goes away.
 * Exit: the command's code, or 128 + the signal number that killed it (what a shell reports).
 *
 * This file imports nothing from sluice: only Node built-ins, so it stays small and runs in any sandbox.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';

interface InitArgs {
  port: number;
  socket: string;
  signalsFd: number | null;
  command: string[];
}

function parse(argv: string[]): InitArgs | string {
  const out: InitArgs = { port: 0, socket: '', signalsFd: null, command: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.command = argv.slice(i + 1);
      break;
    }
    const v = argv[++i];
    if (v === undefined) return `${a} needs a value`;
    if (a === '--listen') out.port = Number(v);
    else if (a === '--socket') out.socket = v;
    else if (a === '--signals-fd') out.signalsFd = Number(v);
    else return `unknown argument ${a}`;
  }
  if (!Number.isInteger(out.port) || out.port < 1 || out.port > 65535) return '--listen needs a port';
  if (!out.socket) return '--socket needs a path';
  if (out.command.length === 0) return 'no command after --';
  return out;
}

/** Listens on 127.0.0.1:port (and [::1]:port when there is IPv6) and pipes each connection to `socket`. */
function relay(port: number, socket: string): Promise<net.Server[]> {
  const handle = (client: net.Socket): void => {
    const up = net.connect(socket);
    const close = (): void => {
      client.destroy();
      up.destroy();
    };
    client.on('error', close);
    up.on('error', close);
    client.pipe(up);
    up.pipe(client);
  };
  const listen = (host: string): Promise<net.Server | null> =>
    new Promise((resolve, reject) => {
      const server = net.createServer(handle);
      server.once('error', (err: NodeJS.ErrnoException) => (host === '::1' ? resolve(null) : reject(err)));
      server.listen(port, host, () => resolve(server));
    });
  return Promise.all([listen('127.0.0.1'), listen('::1')]).then((s) => s.filter((x): x is net.Server => x !== null));
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (typeof args === 'string') {
    process.stderr.write(`sluice sandbox: ${args}\n`);
    process.exit(2);
  }
  const servers = await relay(args.port, args.socket);
  const [file, ...rest] = args.command as [string, ...string[]];
  const child = spawn(file, rest, { stdio: 'inherit' });
  const deliver = (signal: string): void => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill(signal as NodeJS.Signals);
      } catch {
        // Not a signal name this platform knows: nothing to deliver.
      }
    }
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => deliver(s));
  if (args.signalsFd !== null) {
    // A socket, not fs.createReadStream: a thread-pool read blocked on an idle pipe keeps the process from exiting.
    const pipe = new net.Socket({ fd: args.signalsFd, readable: true, writable: false });
    let buf = '';
    pipe.on('data', (c: Buffer | string) => {
      buf += c.toString();
      for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
        const name = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (/^SIG[A-Z0-9]+$/.test(name)) deliver(name);
      }
    });
    pipe.on('end', () => deliver('SIGHUP'));
    pipe.on('error', () => {});
  }
  child.once('error', (err: NodeJS.ErrnoException) => {
    process.stderr.write(`sluice sandbox: ${file}: ${err.code === 'ENOENT' ? 'command not found' : (err.code ?? err.message)}\n`);
    process.exit(err.code === 'ENOENT' ? 127 : 126);
  });
  child.once('exit', (code, signal) => {
    for (const s of servers) s.close();
    process.exit(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
  });
}

void main().catch((err: unknown) => {
  process.stderr.write(`sluice sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(126);
});
