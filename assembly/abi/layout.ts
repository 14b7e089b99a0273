// The one memory layout of the shared WebAssembly.Memory, read by the core (AssemblyScript) and the
// host (TypeScript) alike. This file must stay valid in both languages: plain integer constants only.
//
//   0x0000_0000  AS_STATIC      AssemblyScript's own constant data (strings); never written at run time
//   0x0001_0000  RVC_TABLE      compressed → 32-bit instruction expansion table (65536 × u32), built once
//   0x0005_0000  MACHINE        VM-wide state shared by every hart: memory slots, CLINT, PLIC, config
//   0x0006_0000  HARTS          one HART_SIZE block per hart: registers, CSRs, the run (exit) area, TLBs
//   0x0046_0000  SCRATCH        one SCRATCH_SIZE block per instance (per vCPU worker)
//   0x004e_0000  VIRTIO         the virtqueue data plane's records and chain area, virtio-mmio interrupt words
//   0x0050_0000  JIT_STATE      one JIT_STATE_SIZE block per hart: the block translator's cache and buffers
//   0x0090_0000  GUEST_RAM      memory slots' backing store, handed out by the host (like KVM's userspace_addr)
//
// Everything a hart owns lives in its HARTS block, so several instances (one per vCPU worker) can share
// the memory; a WASM global holds only which block the instance is running.

export const PAGE_SIZE = 4096;
export const WASM_PAGE_SIZE = 65536;
export const MAX_HARTS = 8;

export const AS_STATIC_END = 0x0001_0000;

export const RVC_TABLE = 0x0001_0000;
export const RVC_TABLE_SIZE = 0x0004_0000;

// ---- MACHINE: VM-wide state ----
export const MACHINE = 0x0005_0000;
export const MACHINE_SIZE = 0x0001_0000;
// Config words (i32), written by the host before the first run.
export const MACHINE_RVC_READY = MACHINE + 0x00; // 1 once the RVC table is built
export const MACHINE_NUM_HARTS = MACHINE + 0x04;
export const MACHINE_FLAGS = MACHINE + 0x08; // MACHINE_FLAG_* bits
export const MACHINE_LOCK = MACHINE + 0x0c; // spin lock for PLIC updates from several threads
export const MACHINE_FLAG_SBI_IN_CORE = 1; // S-mode ECALL is an SBI call served by the core / host (no M-mode firmware)
export const MACHINE_FLAG_CLINT = 2; // the CLINT is emulated in the core at CLINT_BASE
export const MACHINE_FLAG_PLIC = 4; // the PLIC is emulated in the core at PLIC_BASE
export const MACHINE_FLAG_JIT = 8; // hot blocks are translated to WebAssembly (the host supplies jitCompile)
export const MACHINE_FLAG_GUEST_DEBUG = 16; // EBREAK exits to the host (a debugger's breakpoint), as KVM_GUESTDBG_USE_SW_BP
// Memory slots: KVM_SET_USER_MEMORY_REGION. Guest-physical ranges backed by host (WASM) memory.
export const MACHINE_STOP = MACHINE + 0x18; // i32 SMP: set by the VMM to make every vCPU worker return
export const MACHINE_JIT_THRESHOLD = MACHINE + 0x1c; // i32 times a block start is reached before it is translated (MACHINE_FLAG_JIT)
export const MACHINE_JIT_BATCH = MACHINE + 0x20; // i32 translated blocks compiled together, 1..JIT_BATCH_MAX
export const MACHINE_PAUSE = MACHINE + 0x24; // i32 SMP: 1 while the VMM holds every vCPU worker between slices (the monitor's stop)
export const MACHINE_PAUSED_HARTS = MACHINE + 0x28; // i32 SMP: workers holding at MACHINE_PAUSE (the VMM waits until all are)
export const MACHINE_FENCE_WORD = MACHINE + 0x14; // target of the atomic RMW that implements FENCE
export const MACHINE_SLOT_COUNT = MACHINE + 0x10; // i32: highest used slot index + 1
// Guest debugging (MACHINE_FLAG_GUEST_DEBUG) beyond EBREAK: KVM's hardware breakpoints and watchpoints.
// A page holding one is never put into the TLB, so every fetch or access there takes the slow path,
// which compares; the fast paths pay nothing.
export const MACHINE_DEBUG_BREAKPOINT_COUNT = MACHINE + 0x300; // i32, at most DEBUG_MAX_BREAKPOINTS
export const MACHINE_DEBUG_WATCHPOINT_COUNT = MACHINE + 0x304; // i32, at most DEBUG_MAX_WATCHPOINTS
export const MACHINE_DEBUG_RESUME_PC = MACHINE + 0x308; // u64: the pc of the last debug exit, not stopped at again first thing
export const MACHINE_DEBUG_HIT_ADDRESS = MACHINE + 0x310; // u64: the data address of the watchpoint hit
export const MACHINE_DEBUG_HIT_KIND = MACHINE + 0x318; // i32 DEBUG_HIT_*: why the last EXIT_DEBUG
export const MACHINE_DEBUG_BREAKPOINTS = MACHINE + 0x320; // DEBUG_MAX_BREAKPOINTS × u64 virtual pc
export const MACHINE_DEBUG_WATCHPOINTS = MACHINE + 0x340; // DEBUG_MAX_WATCHPOINTS × DEBUG_WATCHPOINT_SIZE
export const DEBUG_MAX_BREAKPOINTS = 4;
export const DEBUG_MAX_WATCHPOINTS = 4;
export const DEBUG_WATCHPOINT_SIZE = 24;
export const DEBUG_WATCHPOINT_ADDRESS = 0; // u64 virtual
export const DEBUG_WATCHPOINT_LENGTH = 8; // u64 bytes
export const DEBUG_WATCHPOINT_ACCESS = 16; // i32 DEBUG_WATCH_* bits
export const DEBUG_WATCH_WRITE = 1;
export const DEBUG_WATCH_READ = 2;
export const DEBUG_HIT_SOFTWARE_BREAKPOINT = 0; // an EBREAK
export const DEBUG_HIT_HARDWARE_BREAKPOINT = 1; // pc reached MACHINE_DEBUG_BREAKPOINTS
export const DEBUG_HIT_WATCH_WRITE = 2; // the instruction before pc wrote a watched byte
export const DEBUG_HIT_WATCH_READ = 3; // ... read one
export const MACHINE_SLOTS = MACHINE + 0x100;
export const MAX_SLOTS = 16;
export const SLOT_SIZE = 32;
export const SLOT_GPA = 0; // u64 guest-physical start
export const SLOT_LEN = 8; // u64 length in bytes (0 = slot unused)
export const SLOT_HOST = 16; // u32 offset in WASM memory
export const SLOT_FLAGS = 20; // u32 SLOT_FLAG_*
export const SLOT_FLAG_READONLY = 1;
// CLINT (ACLINT MTIMER + MSWI): mtimecmp per hart. mtime itself comes from the host clock import.
export const MACHINE_MTIME_OFFSET = MACHINE + 0x400; // i64 added to the host clock (guest writes to mtime)
export const MACHINE_MTIMECMP = MACHINE + 0x800; // MAX_HARTS × u64
// PLIC: PLIC_SOURCES sources, 2 contexts per hart (M, S).
export const PLIC_SOURCES = 128;
export const PLIC_CONTEXTS = MAX_HARTS * 2;
export const MACHINE_PLIC = MACHINE + 0x1000;
export const PLIC_PRIORITY = MACHINE_PLIC + 0x000; // PLIC_SOURCES × u32
export const PLIC_PENDING = MACHINE_PLIC + 0x200; // PLIC_SOURCES/32 × u32
export const PLIC_LEVEL = MACHINE_PLIC + 0x220; // input line levels, PLIC_SOURCES/32 × u32
export const PLIC_CLAIMED = MACHINE_PLIC + 0x240; // sources claimed and not yet completed
export const PLIC_CTX = MACHINE_PLIC + 0x400; // PLIC_CONTEXTS × PLIC_CTX_SIZE
export const PLIC_CTX_SIZE = 0x40;
export const PLIC_CTX_ENABLE = 0x00; // PLIC_SOURCES/32 × u32
export const PLIC_CTX_THRESHOLD = 0x20; // u32

// ---- HARTS: per-hart state ----
export const HARTS = 0x0006_0000;
export const HART_SIZE = 0x0008_0000;
// Integer and FP registers.
export const HART_X = 0x000; // 32 × u64
export const HART_F = 0x100; // 32 × u64 (NaN-boxed singles)
export const HART_PC = 0x200; // u64
export const HART_PRIV = 0x208; // i32: 0 U, 1 S, 3 M
export const HART_ID = 0x20c; // i32
export const HART_STATE = 0x210; // i32 HART_STATE_* (SBI HSM)
export const HART_WAKE = 0x214; // i32 futex word: bumped to wake a hart sleeping in WFI
export const HART_RESERVATION = 0x218; // u64 LR reservation address, -1 = none
export const HART_RESERVED_VALUE = 0x220; // u64 value loaded by LR (SC is a compare-and-swap against it)
export const HART_INSTRET = 0x228; // u64 instructions retired (also the cycle count: one per cycle)
export const HART_CUR_ASID = 0x230; // i32 ASID of satp: part of every TLB tag
export const HART_HSM_START_ADDR = 0x238; // u64
export const HART_HSM_OPAQUE = 0x240; // u64
export const HART_EXT_IP = 0x248; // i32 MEIP/SEIP driven by the PLIC (or-ed into mip on read)
export const HART_FLUSH_REQ = 0x24c; // i32 remote fence requests from other harts (FLUSH_REQ_* bits)
export const HART_DATA_TLB = 0x250; // i32 address of the TLB set used by loads/stores (depends on priv, MPRV, SUM)
export const HART_FETCH_TLB = 0x254; // i32 address of the TLB set used by instruction fetch
export const HART_TRAP_COUNT = 0x258; // u64 traps taken (statistics)
export const HART_RUNNING = 0x260; // i32 1 while run() executes this hart (remote fences wait only for running harts)
export const HART_FENCE_I_COUNT = 0x264; // i32 FENCE.Is this hart has done: the block cache's generation
export const FLUSH_REQ_TLB = 1;
export const FLUSH_REQ_ICACHE = 2;
// CSRs that are plain storage (WARL masks applied on write).
export const HART_CSR = 0x300;
export const CSR_MSTATUS = HART_CSR + 0x00;
export const CSR_MISA = HART_CSR + 0x08;
export const CSR_MEDELEG = HART_CSR + 0x10;
export const CSR_MIDELEG = HART_CSR + 0x18;
export const CSR_MIE = HART_CSR + 0x20;
export const CSR_MIP = HART_CSR + 0x28; // i32 bits written atomically by other harts and devices
export const CSR_MTVEC = HART_CSR + 0x30;
export const CSR_MSCRATCH = HART_CSR + 0x38;
export const CSR_MEPC = HART_CSR + 0x40;
export const CSR_MCAUSE = HART_CSR + 0x48;
export const CSR_MTVAL = HART_CSR + 0x50;
export const CSR_MCOUNTEREN = HART_CSR + 0x58;
export const CSR_SCOUNTEREN = HART_CSR + 0x60;
export const CSR_STVEC = HART_CSR + 0x68;
export const CSR_SSCRATCH = HART_CSR + 0x70;
export const CSR_SEPC = HART_CSR + 0x78;
export const CSR_SCAUSE = HART_CSR + 0x80;
export const CSR_STVAL = HART_CSR + 0x88;
export const CSR_SATP = HART_CSR + 0x90;
export const CSR_FCSR = HART_CSR + 0x98; // fflags | frm << 5
export const CSR_MENVCFG = HART_CSR + 0xa0;
export const CSR_SENVCFG = HART_CSR + 0xa8;
export const CSR_STIMECMP = HART_CSR + 0xb0;
export const CSR_MCOUNTINHIBIT = HART_CSR + 0xb8;
export const CSR_MCYCLE_OFFSET = HART_CSR + 0xc0; // mcycle = instret + offset (guest writes to mcycle)
export const CSR_MINSTRET_OFFSET = HART_CSR + 0xc8;
export const CSR_PMPCFG = HART_CSR + 0x100; // 16 × u8 (pmpcfg0, pmpcfg2 on RV64)
export const CSR_PMPADDR = HART_CSR + 0x110; // 16 × u64
export const PMP_ENTRIES = 16;
// The run area: KVM's `struct kvm_run`, how the core tells the host why run() returned.
export const HART_RUN = 0x800;
export const RUN_EXIT_REASON = HART_RUN + 0x00; // i32 EXIT_*
export const RUN_MMIO_IS_WRITE = HART_RUN + 0x04; // i32
export const RUN_MMIO_ADDR = HART_RUN + 0x08; // u64 guest-physical
export const RUN_MMIO_DATA = HART_RUN + 0x10; // u64: the store's data, or where the host puts the load's result
export const RUN_MMIO_SIZE = HART_RUN + 0x18; // i32 1, 2, 4 or 8
export const RUN_MMIO_DEST = HART_RUN + 0x1c; // i32 internal: register that receives a pending load (-1 none)
export const RUN_MMIO_LOAD_KIND = HART_RUN + 0x20; // i32 internal: LOAD_KIND_* of the pending load
export const RUN_PENDING_LEN = HART_RUN + 0x24; // i32 internal: length of the instruction to retire on resume
export const RUN_SBI_ARGS = HART_RUN + 0x40; // 8 × u64: a0..a7 of an SBI exit
export const RUN_SBI_RET = HART_RUN + 0x80; // 2 × u64: error, value the host returns
export const RUN_SBI_PENDING = HART_RUN + 0x90; // i32 internal: 1 while an SBI exit awaits its result
export const RUN_SYSTEM_EVENT = HART_RUN + 0x94; // i32 SYSTEM_EVENT_*
export const RUN_INTERNAL_ERROR = HART_RUN + 0x98; // i32 INTERNAL_ERROR_*
export const RUN_ERROR_DATA = HART_RUN + 0xa0; // u64 detail of the internal error (pc, address)
export const RUN_BUDGET_USED = HART_RUN + 0xa8; // u64 instructions executed by the last run()
export const RUN_MMIO_FAULT = HART_RUN + 0xb0; // i32 set by the host: the MMIO access faults (no device there)
export const RUN_MMIO_VA = HART_RUN + 0xb8; // u64 internal: virtual address of the pending access (for mtval)
export const RUN_DOORBELL = HART_RUN + 0xc0; // i32 SMP: 1 while a vCPU worker waits for the VMM to handle its exit
// Software TLBs: one set per effective privilege — U, S with SUM=0, S with SUM=1, M — each with fetch,
// load and store arrays, so neither a trap nor Linux's frequent SUM toggling needs a flush.
export const HART_TLB = 0x1000;
// 1024 entries, not 256: Linux maps its memory with superpages, which this TLB holds 4 KiB at a time, so
// the kernel's working set needs many entries (4 KiB disk requests: +6 % on a first pass, +15-23 % once
// warm, 6 % less CPU; 2048 gained nothing more).
export const TLB_ENTRIES = 1024; // per array, direct-mapped
export const TLB_ENTRY_SIZE = 32;
export const TLB_ARRAY_SIZE = TLB_ENTRIES * TLB_ENTRY_SIZE; // 32 KiB
export const TLB_SET_SIZE = TLB_ARRAY_SIZE * 3;
export const TLB_FETCH = 0;
export const TLB_LOAD = TLB_ARRAY_SIZE;
export const TLB_STORE = TLB_ARRAY_SIZE * 2;
export const TLB_TAG = 0; // i64 virtual page | ASID << 3 (bits 3..11 are free in a page address), -1 when invalid
export const TLB_ADDEND = 8; // i64 host address minus virtual address
export const TLB_FLAGS = 16; // i32 TLB_FLAG_*: only SFENCE.VMA reads it
export const TLB_FLAG_GLOBAL = 1; // a copy of a global mapping (survives ASID-specific fences)
export const ASID_BITS = 9; // satp.ASID is WARL: 9 bits, so the ASID fits in the tag's free low bits
export const TLB_PRIV_SETS = 4; // U, S, S+SUM, M
export const TLB_SET_U = 0;
export const TLB_SET_S = 1;
export const TLB_SET_S_SUM = 2;
export const TLB_SET_M = 3;


// ---- per-instance scratch ----
export const SCRATCH = 0x0046_0000;
export const SCRATCH_SIZE = 0x0001_0000;

// ---- JIT_STATE: the block translator (assembly/jit), per hart ----
// Hot straight-line code becomes a small WebAssembly function that the host compiles into the instance's
// function table. Per hart: the block cache (two-way set associative, keyed by the host address of the
// block's first instruction), the heat counters that decide what to translate, the batch of translated
// blocks waiting to be compiled together (one module per block would give V8 one code space per block,
// scattered over the address space: measured 4K-read throughput fell from 11 to 4.5 MB/s), and the buffers the
// translator writes modules to. Offsets are from the hart's block, JIT_STATE + id × JIT_STATE_SIZE.
export const JIT_STATE = 0x0050_0000;
export const JIT_STATE_SIZE = 0x0008_0000;
// FENCE.I does not throw translations away: it starts a new generation (HART_FENCE_I_COUNT), and an entry
// from an older one is checked against the code bytes (JIT_HASH) before it runs again.
export const JIT_CACHE = 0x0_0000;
export const JIT_ENTRIES = 8192; // JIT_ENTRIES / 2 sets of two ways
export const JIT_ENTRY_SIZE = 24;
export const JIT_KEY = 0; // u32 host address of the block's first instruction (0 = empty)
export const JIT_RECENT = 4; // u8 1 if this way of its set was used more recently than the other
// An entry is a region's own (its function starts at this block) or an *entry point* into another entry's
// region: a block the region already holds, entered through the region's function, instead of a second
// translation of the same code (13 % fewer regions to compile over a boot and a disk benchmark's dd runs).
export const JIT_ENTRY_BLOCK = 5; // u8 0: the region's own entry; else this block of the region at JIT_REGION_ENTRY
export const JIT_LENGTH = 6; // i16 instructions in the block's longest path; 0 waiting in the batch, -1 cannot be translated
export const JIT_GENERATION = 8; // u32 the HART_FENCE_I_COUNT value the entry was made or last checked in
export const JIT_BYTES = 12; // u32 the guest code the region covers on its page: (first byte's page offset << 16) | bytes
export const JIT_HASH = 16; // u64 hash of those bytes
// An entry point's region: its entry's address (in place of JIT_BYTES), and that entry's key and its hash's
// low half (in place of JIT_HASH). An entry point goes when its region's entry is translated again.
export const JIT_REGION_ENTRY = 12; // u32
export const JIT_REGION_KEY = 16; // u32
export const JIT_REGION_HASH = 20; // u32
// Heat counters: visits of block starts not in the cache, u32 each, hashed and untagged (LuaJIT's hot
// counters): starts that share a counter pool their visits and get translated a little early, which costs
// one translation, where a tagged counter that restarts on every collision kept two alternating hot
// starts cold for ever (half the kernel's per-request path during a 4 KiB dd). Half a count stays when its
// start is translated: the translator reads the counters to choose which starts a region takes.
export const JIT_HEAT = 0x3_0000;
export const JIT_HEAT_COUNTERS = 8192;
// The batch: JIT_BATCH_MAX translated blocks whose function bodies wait in JIT_BODIES. Its records and
// block lists also go, with the compiled module, to the VM's other harts (SMP), which adopt the
// translations into their own caches instead of translating and compiling the same code again.
export const JIT_BATCH = 0x3_8000;
export const JIT_BATCH_COUNT = 0x00; // i32 blocks in the batch
export const JIT_BATCH_BODY_BYTES = 0x04; // i32 bytes of JIT_BODIES used
export const JIT_BATCH_SINCE = 0x08; // u64 HART_INSTRET when the batch's first block joined it
export const JIT_BATCH_BLOCKS_USED = 0x10; // i32 entries of JIT_BATCH_BLOCKS used
export const JIT_BATCH_RECORDS = 0x20; // JIT_BATCH_MAX × JIT_RECORD_SIZE
export const JIT_BATCH_MAX = 128;
export const JIT_RECORD_SIZE = 32;
export const JIT_RECORD_ENTRY = 0; // u32 address of the cache entry
export const JIT_RECORD_KEY = 4; // u32 its key when the block was translated
export const JIT_RECORD_TABLE_INDEX = 8; // i32 function-table slot for the block
export const JIT_RECORD_LENGTH = 12; // i32 instructions in the block
export const JIT_RECORD_BYTES = 16; // u32 the code the region covers, as JIT_BYTES
export const JIT_RECORD_FIRST_BLOCK = 20; // u16 its first block's index in JIT_BATCH_BLOCKS
export const JIT_RECORD_BLOCK_COUNT = 22; // u16 its blocks there (the entry's first), as JIT_REGION_BLOCKS holds them
export const JIT_RECORD_HASH = 24; // u64 hash of the code, as JIT_HASH
// The blocks of every region in the batch, JIT_REGION_BLOCK_SIZE bytes each: what makes entry points.
export const JIT_BATCH_BLOCKS = 0x1100;
export const JIT_BATCH_BLOCKS_MAX = 3008;
// Statistics, for the VMM to read (any thread): blocks compiled, the modules they came in, blocks whose
// module the host could not compile (a translator bug; they stay interpreted), regions adopted.
export const JIT_STATS = 0x3_f000;
export const JIT_STATS_BLOCKS = 0x0; // u32
export const JIT_STATS_MODULES = 0x4; // u32
export const JIT_STATS_FAILED = 0x8; // u32
export const JIT_STATS_ADOPTED = 0xc; // u32 regions taken from other harts' batches
// The blocks of the region being translated (assembly/jit/translate.ts): at most JIT_REGION_MAX_BLOCKS
// (which keeps every branch depth in the function below 128, one LEB byte).
export const JIT_REGION_BLOCKS = 0x3_f100;
export const JIT_REGION_MAX_BLOCKS = 64;
export const JIT_REGION_BLOCK_SIZE = 8;
export const JIT_REGION_BLOCK_START = 0; // u32 page offset of the block's first instruction
export const JIT_REGION_BLOCK_LENGTH = 4; // i32 instructions in the block
export const JIT_BODIES = 0x4_0000; // function bodies, back to back
export const JIT_BODIES_SIZE = 0x1_f000; // leaves JIT_MODULE room for the header
export const JIT_MODULE = 0x6_0000; // the module handed to the host: the batch's bodies with its header
export const JIT_MODULE_SIZE = 0x2_0000;
/** Function-table index of hart h's cache entry e: JIT_TABLE_BASE + h * JIT_ENTRIES + e. */
export const JIT_TABLE_BASE = 16;

// ---- guest RAM ----
export const GUEST_RAM = 0x0090_0000;

// ---- exit reasons (run() return value) ----
export const EXIT_BUDGET = 0; // the instruction budget ran out
export const EXIT_MMIO = 1; // a load or store to guest-physical memory outside every RAM slot
export const EXIT_SBI = 2; // an SBI call the core does not serve (console, vendor, unknown)
export const EXIT_HALT = 3; // WFI with no interrupt pending (the host sleeps until a timer or device event)
export const EXIT_SYSTEM_EVENT = 4; // SBI SRST: shutdown or reset
export const EXIT_INTERNAL_ERROR = 5; // the core cannot continue (see RUN_INTERNAL_ERROR)
export const EXIT_HART_STOPPED = 6; // SBI HSM: this hart is stopped (or not yet started)
export const EXIT_DEBUG = 7; // EBREAK under MACHINE_FLAG_GUEST_DEBUG: HART_PC is the EBREAK's, not retired

export const SYSTEM_EVENT_SHUTDOWN = 0;
export const SYSTEM_EVENT_RESET = 1;

export const INTERNAL_ERROR_NO_RVC_TABLE = 1;

export const HART_STATE_STARTED = 0;
export const HART_STATE_STOPPED = 1;
export const HART_STATE_START_PENDING = 2;
export const HART_STATE_STOP_PENDING = 3;
export const HART_STATE_SUSPENDED = 4;

export const LOAD_KIND_I8 = 0;
export const LOAD_KIND_I16 = 1;
export const LOAD_KIND_I32 = 2;
export const LOAD_KIND_I64 = 3;
export const LOAD_KIND_U8 = 4;
export const LOAD_KIND_U16 = 5;
export const LOAD_KIND_U32 = 6;
export const LOAD_KIND_F32 = 7; // FLW: NaN-box into an F register
export const LOAD_KIND_F64 = 8;

// ---- the virt board (QEMU hw/riscv/virt.c) devices that live in the core ----
export const CLINT_BASE = 0x0200_0000;
export const CLINT_SIZE = 0x0001_0000;
export const PLIC_BASE = 0x0c00_0000;
export const PLIC_SIZE = 0x0060_0000;
// The board's virtio-mmio transports (QEMU's VIRT_VIRTIO, VIRTIO_IRQ): slot n at VIRTIO_MMIO_BASE + n ×
// VIRTIO_MMIO_STRIDE, on PLIC source VIRTIO_MMIO_FIRST_IRQ + n. The core serves their interrupt registers
// (see VIRTIO_MMIO_IN_CORE); everything else in the window is an MMIO exit to the VMM.
export const VIRTIO_MMIO_BASE = 0x1000_1000;
export const VIRTIO_MMIO_STRIDE = 0x1000;
export const VIRTIO_MMIO_SLOTS = 8;
export const VIRTIO_MMIO_FIRST_IRQ = 1;
export const VIRTIO_MMIO_INTERRUPT_STATUS = 0x060; // register offsets in a transport's window
export const VIRTIO_MMIO_INTERRUPT_ACK = 0x064;
export const TIMEBASE_HZ = 10000000;

// ---- VIRTIO: the in-core split-virtqueue data plane (issue #5) ----
// 0x4E0000..0x500000, between SCRATCH and JIT_STATE. Queue records are VM-wide (the host configures them
// from the virtio-mmio transports); the chain area is written by the one instance the VMM thread calls
// virtqPop on, and read by the host right after the call.
export const VIRTIO = 0x004e_0000;
export const VIRTIO_SIZE = 0x0002_0000;
// Records come 8 per transport: first the 8 virtio-mmio slots', then one set per PCI slot of bus 0 (32,
// the host bridge's slot 0 included so a slot's records are plain arithmetic), after the chain area.
export const VIRTQ_QUEUES_PER_TRANSPORT = 8;
export const VIRTQ_PCI_SLOTS = 32;
export const VIRTQ_PCI_FIRST_RECORD = VIRTIO_MMIO_SLOTS * VIRTQ_QUEUES_PER_TRANSPORT; // PCI slot s: records 64 + 8·s..
export const VIRTQ_RECORDS = VIRTIO + 0x1_0000; // VIRTQ_MAX_RECORDS × VIRTQ_RECORD_SIZE (0x5000), up to VIRTIO + 0x1_5000
export const VIRTQ_MAX_RECORDS = VIRTQ_PCI_FIRST_RECORD + VIRTQ_PCI_SLOTS * VIRTQ_QUEUES_PER_TRANSPORT; // 320
export const VIRTQ_RECORD_SIZE = 64;
export const VIRTQ_DESC = 0x00; // u64 guest-physical descriptor table
export const VIRTQ_AVAIL = 0x08; // u64 guest-physical driver area (avail ring)
export const VIRTQ_USED = 0x10; // u64 guest-physical device area (used ring)
export const VIRTQ_DESC_HOST = 0x18; // u32 host address of the descriptor table (0 = queue not configured)
export const VIRTQ_AVAIL_HOST = 0x1c; // u32
export const VIRTQ_USED_HOST = 0x20; // u32
export const VIRTQ_NUM = 0x24; // u32 queue size (power of two)
export const VIRTQ_FEATURES = 0x28; // u32 VIRTQ_FEATURE_* negotiated for this queue
export const VIRTQ_LAST_AVAIL = 0x2c; // u32 next avail ring index the device reads (free-running u16)
export const VIRTQ_USED_IDX = 0x30; // u32 the device's used idx (free-running u16)
export const VIRTQ_SIGNALLED_USED = 0x34; // u32 used idx at the last interrupt decision
export const VIRTQ_SIGNALLED_VALID = 0x38; // u32 1 once SIGNALLED_USED holds a value
export const VIRTQ_ERROR_DETAIL = 0x40; // u64 the descriptor index or address behind the last error
export const VIRTQ_FEATURE_EVENT_IDX = 1;
export const VIRTQ_FEATURE_INDIRECT = 2;
export const VIRTQ_MAX_SIZE = 1024; // largest queue and largest indirect table (VIRTQUEUE_MAX_SIZE in QEMU)
// virtio-mmio interrupt registers served by the core, as KVM serves its in-kernel devices: a guest's
// interrupt handler reads InterruptStatus and writes InterruptACK for every interrupt, and each was an
// MMIO exit. The VMM sets bits in a transport's word (atomically) and raises its line; the core answers
// 32-bit reads of InterruptStatus and writes of InterruptACK of the transports whose bit the VMM set in
// VIRTIO_MMIO_IN_CORE, and lowers the line when no bit is left.
export const VIRTIO_MMIO_IN_CORE = VIRTIO + 0x1_f000; // u32: bit n set: slot n's interrupt registers are the core's
export const VIRTIO_MMIO_INTERRUPT = VIRTIO + 0x1_f040; // VIRTIO_MMIO_SLOTS × u32: each transport's InterruptStatus
// The chain virtqPop returns: a header, then segments of guest RAM as host (WASM memory) addresses.
export const VIRTQ_CHAIN = VIRTIO + 0x1000;
export const VIRTQ_CHAIN_COUNT = VIRTQ_CHAIN + 0x0; // u32 segments
export const VIRTQ_CHAIN_READABLE = VIRTQ_CHAIN + 0x4; // u32 readable segments (they come first)
export const VIRTQ_CHAIN_SEGMENTS = VIRTQ_CHAIN + 0x10;
export const VIRTQ_SEGMENT_SIZE = 16;
export const VIRTQ_SEG_HOST = 0; // u32 host address
export const VIRTQ_SEG_LEN = 4; // u32 bytes
export const VIRTQ_SEG_GPA = 8; // u64 guest-physical address (for logs)
export const VIRTQ_MAX_SEGMENTS = 2048; // a descriptor that spans RAM slots becomes several segments
// virtqPop results: >= 0 is the chain's head index; otherwise one of these.
export const VIRTQ_EMPTY = -1;
export const VIRTQ_ERR_NOT_READY = -2; // the queue is not configured
export const VIRTQ_ERR_AVAIL_IDX = -3; // avail.idx moved more than the queue size past the device
export const VIRTQ_ERR_HEAD = -4; // a head index from the avail ring is not below the queue size
export const VIRTQ_ERR_NEXT = -5; // a `next` index is not below the table size
export const VIRTQ_ERR_CHAIN_LENGTH = -6; // more descriptors than the table holds: a loop or an over-long chain
export const VIRTQ_ERR_BUFFER = -7; // a buffer is not inside guest RAM (or its end overflows, or it is read-only and device-writable)
export const VIRTQ_ERR_INDIRECT_FEATURE = -8; // INDIRECT used without VIRTIO_RING_F_INDIRECT_DESC
export const VIRTQ_ERR_INDIRECT_NESTED = -9; // an INDIRECT descriptor inside an indirect table
export const VIRTQ_ERR_INDIRECT_SIZE = -10; // indirect table length zero, not a multiple of 16 or too large
export const VIRTQ_ERR_INDIRECT_TABLE = -11; // the indirect table is not inside guest RAM
export const VIRTQ_ERR_INDIRECT_PLACE = -12; // INDIRECT together with NEXT, or not at the head of the chain
export const VIRTQ_ERR_ORDER = -13; // a device-readable descriptor after a device-writable one
export const VIRTQ_ERR_SEGMENTS = -14; // more segments than VIRTQ_MAX_SEGMENTS
export const VIRTQ_ERR_USED_ID = -15; // virtqPushUsed with an id that is not below the queue size (host bug)
export const VIRTQ_ERR_SIZE = -16; // virtqConfigure: size zero, not a power of two, or above VIRTQ_MAX_SIZE
export const VIRTQ_ERR_RING = -17; // virtqConfigure: a ring is not inside guest RAM (the used ring: writable RAM)
export const VIRTQ_ERR_ALIGN = -18; // virtqConfigure: a ring is misaligned (16 / 2 / 4 bytes)
export const VIRTQ_ERR_RECORD = -19; // no such queue record
