/**
 * Node/V8 flags the daemon runs with. They must be given on the command line (V8 sizes its heap when the
 * isolate starts), so every launcher passes them: `sluiced --detach` (which the dashboard and
 * `sluicectl daemon start` use) when it spawns the background daemon, the `sluiced` shebang for a
 * foreground run, and the test harness.
 *
 * `--max-semi-space-size=8`: V8's default lets the young generation grow to 2 × 16 MB under load and
 * keeps it; at 8 MB the daemon with 1,000 open streams after a load run measured 186 MB RSS instead of
 * 206 MB (bench, issue 9), for about 3% more CPU per request in scavenges.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
