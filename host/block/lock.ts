// A FIFO readers-writer lock for async code. Reads of an image may run side by side; anything that
// changes metadata runs alone. FIFO order keeps a stream of reads from starving a write.

type Waiter = { exclusive: boolean; grant: () => void };

export class AsyncRwLock {
  private activeReaders = 0;
  private writerActive = false;
  private readonly waiters: Waiter[] = [];

  // An uncontended lock is taken at once: each await of a promise is another microtask turn before a
  // guest's request reaches its file (qcow2 4 KiB reads waited ~9 µs longer than raw ones).
  async shared<T>(body: () => Promise<T>): Promise<T> {
    if (this.writerActive || this.waiters.length > 0) await this.acquire(false);
    else this.activeReaders++;
    try {
      return await body();
    } finally {
      this.activeReaders--;
      this.dispatch();
    }
  }

  async exclusive<T>(body: () => Promise<T>): Promise<T> {
    if (this.writerActive || this.activeReaders > 0 || this.waiters.length > 0) await this.acquire(true);
    else this.writerActive = true;
    try {
      return await body();
    } finally {
      this.writerActive = false;
      this.dispatch();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    return new Promise((grant) => {
      this.waiters.push({ exclusive, grant });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiters.length > 0 && !this.writerActive) {
      const next = this.waiters[0]!;
      if (next.exclusive) {
        if (this.activeReaders > 0) return;
        this.writerActive = true;
      } else {
        this.activeReaders++;
      }
      this.waiters.shift();
      next.grant();
    }
  }
}
