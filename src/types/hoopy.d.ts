/** Minimal types for hoopy 0.1.4: a fixed-size Array whose integer indexes wrap modulo its size. */
declare module 'hoopy' {
  class Hoopy<T = unknown> extends Array<T | undefined> {
    constructor(size: number);
    grow(by: number): void;
  }
  export = Hoopy;
}
