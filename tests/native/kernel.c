/* micropv's native test kernel: a small PVH guest, written the way Solo5 and Mini-OS write
 * theirs, that the tests build with the system gcc and boot with `micropv run`. The command
 * line picks what it does:
 *
 *   test=hello                 print over console_io and the PV console ring, check the PVH
 *                              entry state, hvm_start_info, memory map, pvclock; exit 0
 *   test=timer method=M n=N    N timer interrupts (set_timer_op + `sti; hlt`) with upcall
 *                              method M: vector (HVM_PARAM_CALLBACK_IRQ) or lapic
 *                              (HVMOP_set_evtchn_upcall_vector + APIC enable + EOI)
 *   test=exceptions            #UD #BP #DE #GP #PF #NM and `int $0x80` through its own IDT
 *   test=flood                 100 lines through the 2 KiB ring: it fills, the guest waits
 *   test=exit3                 kmain returns 3: exit status 3
 *   test=crash                 SCHEDOP_shutdown(crash)
 *   test=triple                ud2 with an empty IDT: a triple fault
 *   test=spin                  loop forever without leaving the CPU
 *   test=yield                 SCHEDOP_yield forever
 *   test=idle                  `sti; hlt` with nothing armed
 *   test=grant_above           a grant frame mapped above guest RAM, then moved (Mini-OS)
 *   (start.S handles two more, as the whole command line: triple32, ud2 in 32-bit mode
 *   before anything is set up; idt32, a #UD through a 32-bit IDT of its own)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define HYPERVISOR_set_timer_op     15
#define HYPERVISOR_memory_op        12
#define HYPERVISOR_xen_version      17
#define HYPERVISOR_console_io       18
#define HYPERVISOR_grant_table_op   20
#define HYPERVISOR_sched_op         29
#define HYPERVISOR_event_channel_op 32
#define HYPERVISOR_hvm_op           34

#define SCHEDOP_yield       0
#define SCHEDOP_shutdown    2
#define SHUTDOWN_poweroff   0
#define SHUTDOWN_crash      3
#define EVTCHNOP_bind_virq  1
#define EVTCHNOP_send       4
#define EVTCHNOP_unmask     9
#define HVMOP_set_param     0
#define HVMOP_get_param     1
#define HVMOP_set_evtchn_upcall_vector 23
#define HVM_PARAM_CALLBACK_IRQ   0
#define HVM_PARAM_STORE_PFN      1
#define HVM_PARAM_STORE_EVTCHN   2
#define HVM_PARAM_CONSOLE_PFN    17
#define HVM_PARAM_CONSOLE_EVTCHN 18
#define XENMEM_current_reservation 3
#define XENMEM_add_to_physmap    7
#define XENMEM_memory_map        9
#define XENMAPSPACE_shared_info  0
#define XENMAPSPACE_grant_table  1
#define DOMID_SELF 0x7FF0
#define VIRQ_TIMER 0
#define UPCALL_VECTOR 0x20
#define LAPIC_VECTOR  0x21
#define SPURIOUS_VECTOR 0xFF
#define LAPIC_BASE 0xFEE00000UL
#define APIC_LVR 0x30
#define APIC_EOI 0xB0
#define APIC_SVR 0xF0
#define MSR_APICBASE 0x1B
#define UCALL_PORT 0x1000
#define UCALL_EXIT 4

extern char hypercall_page[4096];
extern char isr_stubs[];
extern uint32_t entry_ebx, entry_cr0, entry_cr4, entry_eflags, entry_efer, entry_hc32;
extern uint32_t entry_idt32;
extern uint16_t entry_cs, entry_tr;

void kexit(int status) __attribute__((noreturn));

/* libc bits gcc may call even in freestanding code ----------------------------------- */
void *memset(void *d, int c, size_t n) { unsigned char *p = d; while (n--) *p++ = c; return d; }
void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *p = d; const unsigned char *q = s;
    while (n--) *p++ = *q++;
    return d;
}
static size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) { if (*a != *b) return (unsigned char)*a - (unsigned char)*b; if (!*a) return 0; }
    return 0;
}

/* Hypercalls through the page the host fills on the MSR write -------------------------- */
static long hypercall(unsigned nr, unsigned long a1, unsigned long a2, unsigned long a3)
{
    long ret;
    register unsigned long r10 __asm__("r10") = 0;
    register unsigned long r8 __asm__("r8") = 0;
    __asm__ volatile("call *%[entry]"
                     : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                     : [entry] "r"(hypercall_page + nr * 32)
                     : "memory", "rcx", "r11");
    return ret;
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
#define barrier() __asm__ volatile("" ::: "memory")

/* Console: console_io (Xen's own console) and the PV ring (xenconsoled's) ---------------- */
struct xencons_interface {
    char in[1024];
    char out[2048];
    uint32_t in_cons, in_prod;
    uint32_t out_cons, out_prod;
};
static volatile struct xencons_interface *cons_ring;
static uint32_t cons_port;
static int use_ring;

static void console_io(const char *s, size_t n) { hypercall(HYPERVISOR_console_io, 0, n, (unsigned long)s); }
static void console_puts(const char *s) { console_io(s, strlen(s)); }

static void evtchn_send(uint32_t port) { hypercall(HYPERVISOR_event_channel_op, EVTCHNOP_send, (unsigned long)&port, 0); }

static void ring_write(const char *s, size_t n)
{
    uint32_t prod = cons_ring->out_prod;
    for (size_t i = 0; i < n; i++) {
        while (prod - cons_ring->out_cons >= sizeof(cons_ring->out)) {
            cons_ring->out_prod = prod;
            evtchn_send(cons_port);
            hypercall(HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0);
        }
        cons_ring->out[prod++ % sizeof(cons_ring->out)] = s[i];
    }
    barrier();
    cons_ring->out_prod = prod;
    evtchn_send(cons_port);
}

static void putstr(const char *s, size_t n) { if (use_ring) ring_write(s, n); else console_io(s, n); }

static char *fmt_num(char *end, uint64_t v, int base, int neg)
{
    *--end = 0;
    do { *--end = "0123456789abcdef"[v % base]; v /= base; } while (v);
    if (neg) *--end = '-';
    return end;
}

static void printk(const char *fmt, ...)
{
    char buf[512], num[32];
    size_t n = 0;
    va_list ap;
    va_start(ap, fmt);
    for (const char *p = fmt; *p && n < sizeof(buf) - 24; p++) {
        if (*p != '%') { buf[n++] = *p; continue; }
        int lng = 0;
        p++;
        while (*p == 'l') { lng = 1; p++; }
        const char *s = num;
        switch (*p) {
        case 'd': { int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
                    s = fmt_num(num + sizeof(num), v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0); break; }
        case 'u': s = fmt_num(num + sizeof(num), lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0); break;
        case 'x': s = fmt_num(num + sizeof(num), lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0); break;
        case 's': s = va_arg(ap, const char *); break;
        case 'c': num[0] = (char)va_arg(ap, int); num[1] = 0; break;
        default: num[0] = *p; num[1] = 0; break;
        }
        while (*s && n < sizeof(buf) - 1) buf[n++] = *s++;
    }
    va_end(ap);
    putstr(buf, n);
}

/* Exit: the status reaches the host through a ucall record, then the shutdown ------------- */
struct ucall { uint32_t cmd, line; uint64_t a, b; uint16_t flen, mlen; } __attribute__((packed));
static struct ucall exit_record;

void kexit(int status)
{
    uint32_t reason = status ? SHUTDOWN_crash : SHUTDOWN_poweroff;
    if (status) {
        exit_record.cmd = UCALL_EXIT;
        exit_record.a = (uint64_t)status;
        outl(UCALL_PORT, (uint32_t)(uintptr_t)&exit_record);
    }
    if (use_ring)  /* let the backend take everything, as Solo5 does before it exits */
        while (cons_ring->out_cons != cons_ring->out_prod)
            hypercall(HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0);
    hypercall(HYPERVISOR_sched_op, SCHEDOP_shutdown, (unsigned long)&reason, 0);
    for (;;) __asm__ volatile("cli; hlt");
}

#define CHECK(cond, ...) do { if (!(cond)) { printk("FAIL %s:%d: ", __FILE__, __LINE__); printk(__VA_ARGS__); printk("\n"); failures++; } } while (0)
static int failures;

/* Discovery, HVM params, shared_info -------------------------------------------------- */
static long hvm_param(int op, uint32_t index, uint64_t *value)
{
    struct { uint16_t domid, pad; uint32_t index; uint64_t value; } p = { DOMID_SELF, 0, index, *value };
    long r = hypercall(HYPERVISOR_hvm_op, op, (unsigned long)&p, 0);
    *value = p.value;
    return r;
}

static void hypercall_init(void)
{
    uint32_t base, a, b, c, d;
    for (base = 0x40000000; base < 0x40010000; base += 0x100) {
        cpuid(base, &a, &b, &c, &d);
        if (b == 0x566e6558 && c == 0x65584d4d && d == 0x4d4d566e && a - base >= 2)
            break;
    }
    if (base >= 0x40010000) { console_puts("no Xen\n"); kexit(1); }
    cpuid(base + 2, &a, &b, &c, &d);
    wrmsr(b, (uint64_t)(uintptr_t)hypercall_page);
    if ((unsigned char)hypercall_page[0] == 0xc3) {  /* Solo5 asserts exactly this */
        console_puts("hypercall page not filled by wrmsr\n");
        kexit(1);
    }
}

struct vcpu_time_info { uint32_t version, pad0; uint64_t tsc_timestamp, system_time; uint32_t mul; int8_t shift; uint8_t flags, pad[2]; };
struct vcpu_info { uint8_t upcall_pending, upcall_mask, pad[6]; uint64_t pending_sel; uint64_t cr2, pad1; struct vcpu_time_info time; };
struct shared_info { struct vcpu_info vcpu_info[32]; uint64_t evtchn_pending[64]; uint64_t evtchn_mask[64]; uint32_t wc_version, wc_sec, wc_nsec; };
static uint8_t shared_info_page[4096] __attribute__((aligned(4096)));
static volatile struct shared_info *shared = (volatile struct shared_info *)shared_info_page;
static uint8_t grant_frames[2][4096] __attribute__((aligned(4096)));

static void map_shared_info(void)
{
    struct { uint16_t domid, size; uint32_t space; uint64_t idx, gpfn; } x =
        { DOMID_SELF, 0, XENMAPSPACE_shared_info, 0, (uintptr_t)shared_info_page >> 12 };
    long r = hypercall(HYPERVISOR_memory_op, XENMEM_add_to_physmap, (unsigned long)&x, 0);
    CHECK(r == 0, "add_to_physmap(shared_info) = %ld", r);
}

static uint64_t monotonic(void)
{
    volatile struct vcpu_time_info *t = &shared->vcpu_info[0].time;
    uint32_t v;
    uint64_t ns;
    do {
        v = t->version;
        barrier();
        uint64_t delta = rdtsc() - t->tsc_timestamp;
        if (t->shift >= 0) delta <<= t->shift; else delta >>= -t->shift;
        uint64_t hi, lo;
        __asm__("mulq %3" : "=a"(lo), "=d"(hi) : "a"(delta), "rm"((uint64_t)t->mul));
        ns = t->system_time + (hi << 32 | lo >> 32);
        barrier();
    } while ((v & 1) || v != t->version);
    return ns;
}

/* Interrupts: the IDT, the trap handler, events ---------------------------------------- */
struct frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};
struct gate { uint16_t off0, sel; uint8_t ist, type; uint16_t off1; uint32_t off2, zero; };
static struct gate idt[256] __attribute__((aligned(16)));

static void load_idt(uint16_t limit)
{
    for (int v = 0; v < 256; v++) {
        uint64_t a = (uint64_t)(uintptr_t)isr_stubs + 16 * v;
        idt[v] = (struct gate){ a & 0xFFFF, 0x08, 0, 0x8E, (a >> 16) & 0xFFFF, a >> 32, 0 };
    }
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) p = { limit, (uintptr_t)idt };
    __asm__ volatile("lidt %0" :: "m"(p));
}

static uint32_t timer_port;
static volatile int ticks, upcalls, eois, lapic_mode;
static volatile uint64_t resume;            /* where a test fault continues */
static volatile uint64_t seen_vector, seen_error, seen_cr2, seen_rip;
static volatile int seen;

static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC_BASE + reg) = v; }
static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC_BASE + reg); }

static void handle_events(void)
{
    volatile struct vcpu_info *vi = &shared->vcpu_info[0];
    upcalls++;
    vi->upcall_pending = 0;
    uint64_t sel = __atomic_exchange_n(&vi->pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        int w = __builtin_ctzll(sel);
        sel &= sel - 1;
        uint64_t l2;
        while ((l2 = shared->evtchn_pending[w] & ~shared->evtchn_mask[w]) != 0) {
            int port = w * 64 + __builtin_ctzll(l2);
            __atomic_fetch_and(&shared->evtchn_pending[w], ~(1ULL << (port & 63)), __ATOMIC_SEQ_CST);
            if (port == (int)timer_port)
                ticks++;
        }
    }
}

void trap_handler(struct frame *f)
{
    if (f->vector == UPCALL_VECTOR || f->vector == LAPIC_VECTOR) {
        handle_events();
        if (f->vector == LAPIC_VECTOR) { lapic_write(APIC_EOI, 0); eois++; }  /* after, as Solo5 */
        return;
    }
    if (f->vector == SPURIOUS_VECTOR)
        return;
    seen++;
    seen_vector = f->vector;
    seen_error = f->error;
    seen_rip = f->rip;
    __asm__ volatile("mov %%cr2, %0" : "=r"(seen_cr2));
    if (f->vector == 7) {            /* #NM: give the FPU back and retry the instruction */
        __asm__ volatile("clts");
        return;
    }
    if (!resume) {
        printk("unexpected exception %lu error %lx at %lx\n", f->vector, f->error, f->rip);
        kexit(2);
    }
    f->rip = resume;
}

static void evtchn_unmask(uint32_t port)
{
    __atomic_fetch_and(&shared->evtchn_mask[port / 64], ~(1ULL << (port % 64)), __ATOMIC_SEQ_CST);
    if (shared->evtchn_pending[port / 64] & (1ULL << (port % 64))) {
        /* re-mask so Xen's test-and-clear of the mask succeeds, then ask it to re-raise */
        __atomic_fetch_or(&shared->evtchn_mask[port / 64], 1ULL << (port % 64), __ATOMIC_SEQ_CST);
        hypercall(HYPERVISOR_event_channel_op, EVTCHNOP_unmask, (unsigned long)&port, 0);
    }
}

/* The tests ------------------------------------------------------------------------- */
static void test_hello(const char *cmdline)
{
    console_puts("hello from the test kernel over console_io\n");
    printk("hello from the test kernel over the PV console ring\n");
    printk("cmdline: %s\n", cmdline);
    CHECK((entry_cr0 & ~0x10u) == 1, "CR0 at entry %x (want PE only)", entry_cr0);
    CHECK(entry_cr4 == 0, "CR4 at entry %x", entry_cr4);
    CHECK((entry_eflags & ((1 << 9) | (1 << 8) | (1 << 17))) == 0, "EFLAGS at entry %x", entry_eflags);
    CHECK((entry_efer & (1 << 8)) == 0, "EFER.LME at entry (%x)", entry_efer);
    CHECK(entry_cs != 0 && entry_tr != 0, "CS %x TR %x at entry", entry_cs, entry_tr);
    CHECK(entry_hc32 == 0, "32-bit console_io returned %x", entry_hc32);

    volatile uint32_t *si = (volatile uint32_t *)(uintptr_t)entry_ebx;
    CHECK(si[0] == 0x336ec578 && si[1] == 1, "start_info magic %x version %u", si[0], si[1]);
    uint64_t memmap = *(volatile uint64_t *)(si + 10);
    uint32_t entries = si[12];
    uint64_t console_pfn = 0, store_pfn = 0, port = 0;
    hvm_param(HVMOP_get_param, HVM_PARAM_CONSOLE_PFN, &console_pfn);
    hvm_param(HVMOP_get_param, HVM_PARAM_STORE_PFN, &store_pfn);
    hvm_param(HVMOP_get_param, HVM_PARAM_STORE_EVTCHN, &port);
    int console_reserved = 0, store_reserved = 0;
    for (uint32_t i = 0; i < entries; i++) {
        volatile uint64_t *e = (volatile uint64_t *)(uintptr_t)(memmap + 24 * i);
        uint32_t type = (uint32_t)e[2];
        printk("memmap %u: %lx-%lx type %u\n", i, e[0], e[0] + e[1], type);
        if (type == 2 && e[0] <= console_pfn << 12 && (console_pfn << 12) < e[0] + e[1]) console_reserved = 1;
        if (type == 2 && e[0] <= store_pfn << 12 && (store_pfn << 12) < e[0] + e[1]) store_reserved = 1;
    }
    CHECK(console_reserved && store_reserved, "console/store pages not reserved in the memmap");
    CHECK(port != 0, "no xenstore event channel");

    struct { uint32_t nr; uint32_t pad; uint64_t buffer; } mm = { 8, 0, 0 };
    uint8_t e820[8 * 20];
    mm.buffer = (uintptr_t)e820;
    long r = hypercall(HYPERVISOR_memory_op, XENMEM_memory_map, (unsigned long)&mm, 0);
    CHECK(r == 0 && mm.nr == entries, "XENMEM_memory_map %ld, %u entries", r, mm.nr);
    uint16_t self = DOMID_SELF;
    r = hypercall(HYPERVISOR_memory_op, XENMEM_current_reservation, (unsigned long)&self, 0);
    CHECK(r > 0, "current_reservation %ld", r);
    for (int i = 0; i < 2; i++) {
        struct { uint16_t domid, size; uint32_t space; uint64_t idx, gpfn; } x =
            { DOMID_SELF, 0, XENMAPSPACE_grant_table, (uint64_t)i, (uintptr_t)grant_frames[i] >> 12 };
        r = hypercall(HYPERVISOR_memory_op, XENMEM_add_to_physmap, (unsigned long)&x, 0);
        CHECK(r == 0, "add_to_physmap(grant_table %d) = %ld", i, r);
    }
    r = hypercall(HYPERVISOR_grant_table_op, 2, 0, 0);
    printk("grant_table_op: %ld\n", r);

    uint64_t t0 = monotonic(), t1 = monotonic();
    CHECK(t0 > 0 && t1 > t0, "pvclock %lu then %lu", t0, t1);
    printk("pvclock: %lu ns, then %lu ns\n", t0, t1);
    long v = hypercall(HYPERVISOR_xen_version, 0, 0, 0);
    printk("Xen %ld.%ld\n", v >> 16, v & 0xFFFF);
}

static void setup_upcall(int lapic)
{
    load_idt(sizeof(idt) - 1);
    for (int i = 0; i < 64; i++)
        shared->evtchn_mask[i] = ~0ULL;
    struct { uint32_t virq, vcpu, port; } bv = { VIRQ_TIMER, 0, 0 };
    long r = hypercall(HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, (unsigned long)&bv, 0);
    CHECK(r == 0, "bind_virq %ld", r);
    timer_port = bv.port;
    uint64_t value;
    if (lapic) {
        uint64_t base = rdmsr(MSR_APICBASE);
        wrmsr(MSR_APICBASE, base | (1 << 11));
        base = rdmsr(MSR_APICBASE);
        CHECK((base & (1 << 11)) && (base & (1 << 8)) && (base & ~0xFFFUL) == LAPIC_BASE,
              "APIC base MSR %lx", base);
        CHECK(lapic_read(APIC_LVR) != 0, "APIC version 0");
        lapic_write(APIC_SVR, lapic_read(APIC_SVR) | 0x100 | SPURIOUS_VECTOR);
        struct { uint32_t vcpu; uint8_t vector, pad[3]; } uv = { 0, LAPIC_VECTOR, {0} };
        r = hypercall(HYPERVISOR_hvm_op, HVMOP_set_evtchn_upcall_vector, (unsigned long)&uv, 0);
        CHECK(r == 0, "set_evtchn_upcall_vector %ld", r);
        value = 1;  /* "PV drivers loaded", as Solo5 and FreeBSD set it */
    } else {
        value = (2ULL << 56) | UPCALL_VECTOR;
    }
    r = hvm_param(HVMOP_set_param, HVM_PARAM_CALLBACK_IRQ, &value);
    CHECK(r == 0, "set_param(CALLBACK_IRQ) %ld", r);
    lapic_mode = lapic;
    evtchn_unmask(timer_port);
}

static void test_timer(int lapic, int n)
{
    setup_upcall(lapic);
    uint64_t start = monotonic();
    while (ticks < n) {
        uint64_t deadline = monotonic() + 1000000;   /* 1 ms */
        hypercall(HYPERVISOR_set_timer_op, deadline, 0, 0);
        while (ticks < n && monotonic() < deadline)
            __asm__ volatile("sti; hlt; cli" ::: "memory");  /* sti;hlt: the STI shadow */
    }
    uint64_t elapsed = monotonic() - start;
    CHECK(elapsed >= (uint64_t)n * 1000000, "%d ticks in %lu ns", n, elapsed);
    printk("timer: %d ticks in %lu ns with method %s, %d upcalls, %d EOIs\n",
           ticks, elapsed, lapic ? "lapic" : "vector", upcalls, eois);
}

#define FAULT(insns) __asm__ volatile("lea 1f(%%rip), %%rax\n\tmov %%rax, resume(%%rip)\n\t" insns "\n1:" ::: "rax", "rcx", "rdx", "memory")

static void expect(const char *name, uint64_t vector, int64_t error, uint64_t cr2)
{
    int ok = seen == 1 && seen_vector == vector && (error < 0 || seen_error == (uint64_t)error)
             && (!cr2 || seen_cr2 == cr2);
    printk("exception %s: vector %lu error %lx cr2 %lx rip %lx %s\n", name, seen_vector,
           seen_error, seen_cr2, seen_rip, ok ? "ok" : "WRONG");
    if (!ok) failures++;
    seen = 0;
    resume = 0;
}

static void test_exceptions(void)
{
    load_idt(sizeof(idt) - 1);
    FAULT("ud2");                               expect("#UD", 6, 0, 0);
    FAULT("int3");
    CHECK(seen_rip == resume, "int3 frame RIP %lx, want %lx", seen_rip, resume);
    expect("#BP", 3, 0, 0);
    FAULT("xor %%ecx, %%ecx\n\tdiv %%ecx");     expect("#DE", 0, 0, 0);
    FAULT("movabs $0x8000000000000000, %%rax\n\tmov (%%rax), %%rax"); expect("#GP", 13, 0, 0);
    FAULT("mov 0x50000000, %%eax");             expect("#PF read", 14, 0x0, 0x50000000);
    FAULT("movl $1, 0x50000010");               expect("#PF write", 14, 0x2, 0x50000010);
    FAULT("movl $1, 0x40000020");               expect("#PF write-protect", 14, 0x3, 0x40000020);
    FAULT("mov $0x50000000, %%eax\n\tjmp *%%rax"); expect("#PF fetch", 14, 0x10, 0x50000000);
    FAULT("mov $0x12345, %%ecx\n\trdmsr");      expect("#GP rdmsr", 13, 0, 0);
    FAULT("int $0x80");                         expect("int 0x80", 0x80, 0, 0);
    uint64_t cr0;
    __asm__ volatile("mov %%cr0, %0; or $8, %0; mov %0, %%cr0" : "=r"(cr0));
    __asm__ volatile("fninit");                 /* #NM; the handler clears TS and it retries */
    expect("#NM", 7, 0, 0);
}

/* Mini-OS's PVH build maps its grant frames just above the last e820 entry, where there is
 * no RAM: Xen adds them to the physmap wherever the guest asks. 768 MiB: identity-mapped by
 * start.S, far above the board's RAM. */
static void test_grant_above(void)
{
    const uint64_t gpfn = 0x30000;
    volatile uint32_t *at = (volatile uint32_t *)(uintptr_t)(gpfn << 12);
    struct { uint16_t domid, size; uint32_t space; uint64_t idx, gpfn; } x =
        { DOMID_SELF, 0, XENMAPSPACE_grant_table, 0, gpfn };
    long r = hypercall(HYPERVISOR_memory_op, XENMEM_add_to_physmap, (unsigned long)&x, 0);
    CHECK(r == 0, "add_to_physmap(grant_table 0 at %lx) = %ld", gpfn, r);
    CHECK(at[0] == 0 && at[1023] == 0, "a new grant frame is not empty");
    at[1] = 0x600dcafe;
    x.gpfn = gpfn + 1;                          /* a move takes the contents along */
    r = hypercall(HYPERVISOR_memory_op, XENMEM_add_to_physmap, (unsigned long)&x, 0);
    CHECK(r == 0, "moving grant frame 0 = %ld", r);
    CHECK(at[1024 + 1] == 0x600dcafe, "the moved frame holds %x", at[1024 + 1]);
    printk("grant_above: frame 0 at %lx\n", gpfn + 1);
}

static void parse(const char *cmdline, const char *key, char *out, size_t n)
{
    size_t k = strlen(key);
    out[0] = 0;
    for (const char *p = cmdline; *p; p++) {
        if ((p == cmdline || p[-1] == ' ') && !strncmp(p, key, k) && p[k] == '=') {
            size_t i = 0;
            for (p += k + 1; *p && *p != ' ' && i < n - 1; p++) out[i++] = *p;
            out[i] = 0;
            return;
        }
    }
}

int kmain(uint32_t start_info)
{
    const char *cmdline = (const char *)(uintptr_t)*(volatile uint64_t *)(uintptr_t)(start_info + 24);
    char test[32], method[16], nbuf[16];
    parse(cmdline, "test", test, sizeof(test));
    parse(cmdline, "method", method, sizeof(method));
    parse(cmdline, "n", nbuf, sizeof(nbuf));

    hypercall_init();
    uint64_t pfn = 0, port = 0;
    hvm_param(HVMOP_get_param, HVM_PARAM_CONSOLE_PFN, &pfn);
    hvm_param(HVMOP_get_param, HVM_PARAM_CONSOLE_EVTCHN, &port);
    if (pfn && port) {
        cons_ring = (volatile struct xencons_interface *)(uintptr_t)(pfn << 12);
        cons_port = (uint32_t)port;
        use_ring = 1;
    }
    map_shared_info();

    if (!strncmp(cmdline, "idt32", 5)) {       /* start.S took a #UD in 32-bit mode */
        printk("idt32: %u #UD taken through a 32-bit IDT\n", entry_idt32);
        return entry_idt32 == 1 ? 0 : 1;
    } else if (!strncmp(test, "hello", 6)) {
        test_hello(cmdline);
    } else if (!strncmp(test, "timer", 6)) {
        int n = 0;
        for (const char *p = nbuf; *p; p++) n = n * 10 + (*p - '0');
        test_timer(!strncmp(method, "lapic", 6), n ? n : 3);
    } else if (!strncmp(test, "exceptions", 11)) {
        test_exceptions();
    } else if (!strncmp(test, "flood", 6)) {   /* more than the 2 KiB ring holds */
        for (int i = 0; i < 100; i++)
            printk("flood line %d: the quick brown fox jumps over the lazy dog\n", i);
    } else if (!strncmp(test, "exit3", 6)) {
        printk("returning 3\n");
        return 3;
    } else if (!strncmp(test, "crash", 6)) {
        uint32_t reason = SHUTDOWN_crash;
        hypercall(HYPERVISOR_sched_op, SCHEDOP_shutdown, (unsigned long)&reason, 0);
    } else if (!strncmp(test, "triple", 7)) {
        load_idt(0);  /* an IDT with no room for any gate */
        __asm__ volatile("ud2");
    } else if (!strncmp(test, "spin", 5)) {
        for (;;) __asm__ volatile("" ::: "memory");
    } else if (!strncmp(test, "yield", 6)) {
        for (;;) hypercall(HYPERVISOR_sched_op, SCHEDOP_yield, 0, 0);
    } else if (!strncmp(test, "idle", 5)) {
        __asm__ volatile("sti; hlt");
    } else if (!strncmp(test, "grant_above", 12)) {
        test_grant_above();
    } else {
        printk("unknown test '%s'\n", test);
        return 2;
    }
    if (failures) {
        printk("%d checks failed\n", failures);
        return 1;
    }
    printk("done: %s\n", test);
    return 0;
}
