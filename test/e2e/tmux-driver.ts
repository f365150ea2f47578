/**
 * Drives terminal programs in a private tmux server for the dashboard's end-to-end tests: one server per
 * test file (`tmux -L <unique> -f /dev/null`, so no user config and no user sessions are touched), one
 * session per program, the screen read with `capture-pane -p` (plain text, colours stripped) and keys
 * sent with `send-keys`. Every wait is a bounded poll that fails with the last screen it saw.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { waitFor } from '../fakes/wait-for.js';

const run = promisify(execFile);

/** Quotes one word for `sh -c`. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Throws a clear error when tmux is not installed (the e2e tests need it; `.ci/run` installs it). */
export function requireTmux(): void {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('tmux is not installed: the dashboard e2e tests drive the TUI in tmux (apt-get install -y tmux)');
  }
}

/** One private tmux server. */
export class TmuxServer {
  readonly name = `sluice-e2e-${process.pid}-${randomBytes(4).toString('hex')}`;
  private async tmux(...args: string[]): Promise<string> {
    const { stdout } = await run('tmux', ['-L', this.name, '-f', '/dev/null', ...args], { encoding: 'utf8', timeout: 10_000 });
    return stdout;
  }

  /**
   * Starts `command` (a `sh -c` string) in a new detached session of `columns`×`rows`. The command runs
   * with the tmux server's environment, i.e. the one of the process that started the server.
   */
  async newSession(session: string, command: string, columns = 100, rows = 30): Promise<TmuxPane> {
    await this.tmux('new-session', '-d', '-s', session, '-x', String(columns), '-y', String(rows), command);
    return new TmuxPane(this, session);
  }

  /** Runs a tmux command against this server. */
  exec(...args: string[]): Promise<string> {
    return this.tmux(...args);
  }

  /** Kills the server and everything running in it. */
  kill(): void {
    try {
      execFileSync('tmux', ['-L', this.name, 'kill-server'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // already gone
    }
  }
}

/** A tmux key name (sent as a key, not as text). */
export type TmuxKey = 'Tab' | 'BTab' | 'Enter' | 'Escape' | 'BSpace' | 'Up' | 'Down';

/** The pane of one session. */
export class TmuxPane {
  constructor(
    private readonly server: TmuxServer,
    readonly session: string,
  ) {}

  private get target(): string {
    return `=${this.session}:`;
  }

  /** The visible screen as plain text, one string per row, trailing blanks trimmed. */
  async screen(): Promise<string> {
    const text = await this.server.exec('capture-pane', '-p', '-t', this.target);
    return text
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n');
  }

  /** Types `text` literally (each character a key press). */
  async type(text: string): Promise<void> {
    await this.server.exec('send-keys', '-t', this.target, '-l', text);
  }

  /** Presses named keys (Tab, Enter, BSpace…), in order. */
  async press(...keys: TmuxKey[]): Promise<void> {
    await this.server.exec('send-keys', '-t', this.target, ...keys);
  }

  /**
   * Polls the screen until `predicate` holds (returns the screen) or `timeoutMs` passes (throws `what`
   * with the last screen, so a failure shows what the dashboard actually displayed).
   */
  async waitForScreen(predicate: (screen: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
    let last = '';
    try {
      return await waitFor(
        async () => {
          last = await this.screen();
          return predicate(last) ? last : null;
        },
        { what, timeoutMs, intervalMs: 50 },
      );
    } catch {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the screen was:\n${last}`);
    }
  }
}

/** Names of the dashboard's panels as their title lines spell them. */
export type PanelName = 'Approvals' | 'Credentials' | 'Pools' | 'Notices';

const PANELS: readonly PanelName[] = ['Approvals', 'Credentials', 'Pools', 'Notices'];

/** Matches a panel title line: "  Pools  1" or, focused, "▶ POOLS  1". */
function titleOf(line: string): { name: PanelName; focused: boolean } | null {
  for (const name of PANELS) {
    if (line === `  ${name}` || line.startsWith(`  ${name}  `)) return { name, focused: false };
    const upper = `▶ ${name.toUpperCase()}`;
    if (line === upper || line.startsWith(`${upper}  `)) return { name, focused: true };
  }
  return null;
}

/** The rows of one panel (without its title), or null when the panel is not on screen. */
export function panelRows(screen: string, panel: PanelName): string[] | null {
  const lines = screen.split('\n');
  const start = lines.findIndex((l) => titleOf(l)?.name === panel);
  if (start === -1) return null;
  const rows: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (titleOf(line) !== null) break;
    rows.push(line);
  }
  return rows;
}

/** The focused panel, read from its "▶ TITLE" line. */
export function focusedPanel(screen: string): PanelName | null {
  for (const line of screen.split('\n')) {
    const t = titleOf(line);
    if (t?.focused) return t.name;
  }
  return null;
}

/** The dashboard's first header line ("sluice ● connected  sluiced 0.1.0  proxy …"). */
export function headerLine(screen: string): string {
  return screen.split('\n').find((l) => l.startsWith('sluice ')) ?? '';
}

/** The first word of a panel row (credential, pool or destination), after the selection marker. */
export function rowKey(row: string): string {
  return row.slice(2).trimStart().split(/\s+/)[0] ?? '';
}

/** The row of `panel` whose first word is `key`, or undefined. */
export function findRow(screen: string, panel: PanelName, key: string): string | undefined {
  return (panelRows(screen, panel) ?? []).find((r) => !r.startsWith('    ') && rowKey(r) === key);
}

/** The selected row of `panel` ("› …"), shown only while the panel has focus. */
export function markedRow(screen: string, panel: PanelName): string | undefined {
  return (panelRows(screen, panel) ?? []).find((r) => r.startsWith('› '));
}

/** Presses `tab` until `panel` has focus (the dashboard's own way of moving between panels). */
export async function focusPanel(pane: TmuxPane, panel: PanelName): Promise<string> {
  for (let i = 0; i < 4; i++) {
    const screen = await pane.screen();
    const current = focusedPanel(screen);
    if (current === panel) return screen;
    await pane.press('Tab');
    await pane.waitForScreen((s) => focusedPanel(s) !== current, `focus to move on from ${current ?? 'nothing'}`);
  }
  return pane.waitForScreen((s) => focusedPanel(s) === panel, `focus on ${panel}`, 1_000);
}

/** Moves the selection of the focused `panel` with ↓/↑ until the row `key` is marked. */
export async function selectRow(pane: TmuxPane, panel: PanelName, key: string): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const screen = await pane.screen();
    const rows = (panelRows(screen, panel) ?? []).filter((r) => !r.startsWith('    '));
    const marked = rows.findIndex((r) => r.startsWith('› '));
    const target = rows.findIndex((r) => rowKey(r) === key);
    if (target === -1) throw new Error(`no ${panel} row ${key} on screen:\n${screen}`);
    if (marked === target) return screen;
    const before = marked === -1 ? null : rowKey(rows[marked] ?? '');
    await pane.press(marked === -1 || marked < target ? 'Down' : 'Up');
    await pane.waitForScreen((s) => {
      const now = markedRow(s, panel);
      return (now === undefined ? null : rowKey(now)) !== before;
    }, `the ${panel} selection to move`);
  }
  throw new Error(`could not select ${panel} row ${key}`);
}
