// A FIFO readers-writer lock for async code. Reads of an image may run side by side; anything that
// changes metadata runs alone. FIFO order keeps a stream of reads from starving a write.

type Waiter = { exclusive: boolean; grant: () => void };

export class AsyncRwLock {
  private activeReaders = 0;
  private writerActive = false;
  private readonly waiters: Waiter[] = [];

  async shared<T>(body: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await body();
    } finally {
      this.activeReaders--;
      this.dispatch();
    }
  }

  async exclusive<T>(body: () => Promise<T>): Promise<T> {
    await this.acquire(true);
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
