/** The terminal's size, following resizes of the pane (Ink re-lays out the width itself, not the height). */
import { useStdout } from 'ink';
import { useEffect, useState } from 'react';

/** Columns and rows of the output terminal. */
export interface TerminalSize {
  columns: number;
  rows: number;
}

/** Reads the size from stdout (80×24 when unknown, as for ink-testing-library's rows). */
export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const [size, setSize] = useState<TerminalSize>(() => readSize(stdout));
  useEffect(() => {
    const onResize = (): void => setSize(readSize(stdout));
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

function readSize(stdout: NodeJS.WriteStream): TerminalSize {
  return { columns: stdout.columns || 80, rows: stdout.rows || 24 };
}
