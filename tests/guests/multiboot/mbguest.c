/* mbguest: a Multiboot v1 test kernel. It prints through the COM1 UART (polling LSR THRE), shows
 * its command line, modules and memory map, counts CPUs through fw_cfg, starts the APs with
 * INIT/SIPI/SIPI through the xAPIC, checks whether RDMSR of a nonexistent MSR raises #GP, reads
 * and writes IA32_MISC_ENABLE and IA32_PAT, writes the TSC, reads RDTSCP's IA32_TSC_AUX, moves
 * bytes with REP OUTSB and REP INSB (DF = 1), and exits
 * through isa-debug-exit (0xf4) with the code
 * `exit=N` on its command line (default 0). Lines start with "mbguest: " for the tests. */
#include "guest_lib.h"

extern volatile uint32_t ap_started;
extern char trampoline_start[], trampoline_end[], trampoline_load[];

/* xAPIC registers (SDM Vol. 3A 11.4.1 default base, Table 11-1 offsets; 11.6.1 ICR). */
#define LAPIC_BASE 0xfee00000u
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define ICR_INIT 0x00000500u        /* delivery mode 101 */
#define ICR_STARTUP 0x00000600u     /* delivery mode 110 */
#define ICR_LEVEL_ASSERT 0x00004000u /* bit 14 */
#define ICR_DELIVERY_PENDING 0x00001000u
#define TRAMPOLINE_VECTOR 0x08       /* SIPI vector: the AP starts at 0x08 << 12 = 0x8000 */

static volatile uint32_t* lapic(uint32_t reg) { return (volatile uint32_t*)(LAPIC_BASE + reg); }

static void spin(uint32_t n) {
  for (volatile uint32_t i = 0; i < n; ++i) __asm__ volatile("pause");
}

static void send_ipi(uint32_t apic_id, uint32_t low) {
  *lapic(LAPIC_ICR_HIGH) = apic_id << 24;
  *lapic(LAPIC_ICR_LOW) = low;
  for (int i = 0; i < 100000 && (*lapic(LAPIC_ICR_LOW) & ICR_DELIVERY_PENDING); ++i) __asm__ volatile("pause");
}

/* An MSR no CPU implements: reading it must raise #GP, natively (QEMU TCG) and under Lantern. */
#define MSR_NONEXISTENT 0x4c4e5400u

extern char gp_handler[];
extern volatile uint32_t gp_seen;

/* A flat GDT (MB 3.2 leaves GDTR undefined) and an IDT whose only gate is #GP (vector 13):
 * a 32-bit interrupt gate, P=1, DPL 0, type 0xE (SDM Vol. 3A 6.11, Figure 6-2). */
static uint64_t probe_gdt[3] = {0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull};
static uint64_t probe_idt[14];
static struct __attribute__((packed)) {
  uint16_t limit;
  uint32_t base;
} probe_gdtr, probe_idtr;

/* 1 when RDMSR of `msr` raised #GP. */
static uint32_t rdmsr_faults(uint32_t msr) {
  probe_gdtr.limit = sizeof(probe_gdt) - 1;
  probe_gdtr.base = (uint32_t)probe_gdt;
  __asm__ volatile("lgdt %0\n\tljmp $0x08, $1f\n1:\n\tmovw $0x10, %%ax\n\tmovw %%ax, %%ds\n\t"
                   "movw %%ax, %%es\n\tmovw %%ax, %%ss" : : "m"(probe_gdtr) : "eax", "memory");
  const uint32_t handler = (uint32_t)gp_handler;
  probe_idt[13] = (handler & 0xffffu) | (0x08u << 16) | ((uint64_t)((handler & 0xffff0000u) | 0x8e00u) << 32);
  probe_idtr.limit = sizeof(probe_idt) - 1;
  probe_idtr.base = (uint32_t)probe_idt;
  __asm__ volatile("lidt %0" : : "m"(probe_idtr) : "memory");
  gp_seen = 0;
  __asm__ volatile("rdmsr" : : "c"(msr) : "eax", "edx", "memory");
  return gp_seen;
}

/* IA32_MISC_ENABLE (MSR 0x1A0, SDM Vol. 4 Table 2-2), after rdmsr_faults() installed the #GP
 * gate: its value, whether Limit CPUID Maxval (bit 22, read-write) reads back once set, and
 * whether setting reserved bit 1 raises #GP. The value is restored. */
static void misc_enable(void) {
  uint32_t lo = 0, hi = 0, lo_after = 0, hi_after = 0;
  gp_seen = 0;
  __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(0x1a0u) : "memory");
  const uint32_t read_faulted = gp_seen;
  __asm__ volatile("wrmsr" : : "a"(lo | (1u << 22)), "d"(hi), "c"(0x1a0u) : "memory");
  __asm__ volatile("rdmsr" : "+a"(lo_after), "+d"(hi_after) : "c"(0x1a0u) : "memory");
  __asm__ volatile("wrmsr" : : "a"(lo), "d"(hi), "c"(0x1a0u) : "memory");
  gp_seen = 0;
  __asm__ volatile("wrmsr" : : "a"(lo | (1u << 1)), "d"(hi), "c"(0x1a0u) : "memory");
  const uint32_t reserved_faulted = gp_seen;
  uart_puts("mbguest: misc_enable=");
  uart_putu(read_faulted ? 0xffffffffu : lo);
  uart_puts(" limit-cpuid kept=");
  uart_putu((lo_after >> 22) & 1);
  uart_puts(" reserved-bit #GP=");
  uart_putu(reserved_faulted);
  uart_puts("\n");
}

/* IA32_PAT (MSR 0x277, SDM Vol. 3A 11.12.2): the power-up value (11.12.4: 0x0007040600070406),
 * then a write of all-WB (0x06 in each byte) that must read back; the old value is restored. */
static void pat(void) {
  uint32_t lo = 0, hi = 0, lo_after = 0, hi_after = 0;
  gp_seen = 0;
  __asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(0x277u) : "memory");
  __asm__ volatile("wrmsr" : : "a"(0x06060606u), "d"(0x06060606u), "c"(0x277u) : "memory");
  __asm__ volatile("rdmsr" : "+a"(lo_after), "+d"(hi_after) : "c"(0x277u) : "memory");
  __asm__ volatile("wrmsr" : : "a"(lo), "d"(hi), "c"(0x277u) : "memory");
  uart_puts("mbguest: pat lo=");
  uart_putu(lo);
  uart_puts(" hi=");
  uart_putu(hi);
  uart_puts(lo_after == 0x06060606u && hi_after == 0x06060606u && !gp_seen ? " write kept\n" : " write lost\n");
}

/* The TSC (SDM Vol. 3B 17.17): a WRMSR of IA32_TIME_STAMP_COUNTER (0x10) moves what RDTSC reads
 * (written 2^40, read back within 2^32 ticks above); RDTSCP (CPUID.80000001H:EDX[27]) returns
 * IA32_TSC_AUX (0xC0000103) in ECX. */
static void tsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("wrmsr" : : "a"(0u), "d"(0x100u), "c"(0x10u) : "memory");
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  uart_puts(hi == 0x100u ? "mbguest: tsc write kept" : "mbguest: tsc write lost");
  uint32_t eax = 0x80000001u, ebx, ecx = 0, edx;
  __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  if (edx & (1u << 27)) {
    uint32_t aux;
    __asm__ volatile("wrmsr" : : "a"(0x2au), "d"(0u), "c"(0xc0000103u) : "memory");
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    uart_puts(", rdtscp aux=");
    uart_putu(aux);
    uart_puts("\n");
  } else {
    uart_puts(", no rdtscp\n");
  }
}

static int starts_with(const char* s, const char* prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

/* The value of `exit=N` among the blank-separated words of the command line, or 0. */
static uint32_t exit_code_from(const char* cmdline) {
  const char* p = cmdline;
  while (*p) {
    while (*p == ' ') ++p;
    if (starts_with(p, "exit=")) {
      uint32_t v = 0;
      for (p += 5; *p >= '0' && *p <= '9'; ++p) v = v * 10 + (uint32_t)(*p - '0');
      return v;
    }
    while (*p && *p != ' ') ++p;
  }
  return 0;
}

static void print_module(uint32_t i, const struct multiboot_module* m) {
  uart_puts("mbguest: module ");
  uart_putu(i);
  uart_puts(" bytes=");
  uart_putu(m->mod_end - m->mod_start);
  uart_puts(" string='");
  uart_puts(m->string ? (const char*)m->string : "");
  uart_puts("' first-line='");
  const char* data = (const char*)m->mod_start;
  for (uint32_t j = 0; j < m->mod_end - m->mod_start && j < 60 && data[j] != '\n'; ++j)
    uart_putc(data[j] >= 0x20 && data[j] < 0x7f ? data[j] : '.');
  uart_puts("'\n");
}

static uint32_t start_aps(uint32_t cpus) {
  const uint32_t self = *lapic(LAPIC_ID) >> 24;
  const char* src = trampoline_load;
  char* dst = (char*)0x8000;
  for (uint32_t i = 0; i < (uint32_t)(trampoline_end - trampoline_start); ++i) dst[i] = src[i];
  *lapic(LAPIC_SVR) |= 0x100; /* APIC software enable (SDM Vol. 3A 11.9) */
  /* INIT-SIPI-SIPI to APIC IDs 0..cpus-1 except our own (SDM Vol. 3A 9.4.4.1, Example 9-1). */
  for (uint32_t id = 0, sent = 0; sent + 1 < cpus && id < 255; ++id) {
    if (id == self) continue;
    send_ipi(id, ICR_INIT | ICR_LEVEL_ASSERT);
    spin(10000);
    send_ipi(id, ICR_STARTUP | TRAMPOLINE_VECTOR);
    spin(2000);
    if (ap_started < sent + 1) send_ipi(id, ICR_STARTUP | TRAMPOLINE_VECTOR);
    ++sent;
  }
  for (uint32_t i = 0; i < 2000000 && ap_started + 1 < cpus; ++i) __asm__ volatile("pause");
  return ap_started;
}

/* String port I/O (SDM Vol. 2B INS, OUTS, REP): REP OUTSB writes a whole line to COM1's THR, then
 * REP INSB with DF = 1 reads COM2's modem status register (no device: all-ones) three times into
 * buf[3], buf[2], buf[1], leaving buf[0] alone, EDI one below the last store and ECX at 0. */
static void string_io(void) {
  static const char line[] = "mbguest: rep outsb through COM1\n";
  const char* src = line;
  uint32_t count = sizeof line - 1;
  __asm__ volatile("rep outsb" : "+S"(src), "+c"(count) : "d"((uint16_t)COM1) : "memory");
  volatile uint8_t buf[4] = {0, 0, 0, 0};
  uint8_t* dst = (uint8_t*)&buf[3];
  count = 3;
  __asm__ volatile("std\n\trep insb\n\tcld" : "+D"(dst), "+c"(count) : "d"((uint16_t)0x2fe) : "memory");
  uart_puts("mbguest: rep insb down from 0x2fe:");
  for (int i = 0; i < 4; ++i) {
    uart_puts(" ");
    uart_putu(buf[i]);
  }
  uart_puts(dst == (uint8_t*)&buf[0] ? ", edi at buf[0]" : ", edi wrong");
  uart_puts(", ecx ");
  uart_putu(count);
  uart_puts("\n");
}

void guest_main(uint32_t magic, const struct multiboot_info* info) {
  uart_init();
  uart_puts("mbguest: hello from a multiboot guest\n");
  if (magic != MB_BOOTLOADER_MAGIC) {
    uart_puts("mbguest: FAIL bad bootloader magic\n");
    guest_exit(99);
  }
  const char* cmdline = (info->flags & MB_INFO_CMDLINE) && info->cmdline ? (const char*)info->cmdline : "";
  uart_puts("mbguest: cmdline='");
  uart_puts(cmdline);
  uart_puts("'\n");
  if (info->flags & MB_INFO_MEMORY) {
    uart_puts("mbguest: mem_lower=");
    uart_putu(info->mem_lower);
    uart_puts(" mem_upper=");
    uart_putu(info->mem_upper);
    uart_puts("\n");
  }
  if (info->flags & MB_INFO_MMAP) {
    uint32_t entries = 0, ram_kib = 0;
    for (uint32_t at = info->mmap_addr; at < info->mmap_addr + info->mmap_length;) {
      const uint32_t size = *(const uint32_t*)at;
      const uint32_t* e = (const uint32_t*)(at + 4); /* base (u64), length (u64), type */
      if (e[4] == 1) ram_kib += (uint32_t)((((uint64_t)e[3] << 32) | e[2]) >> 10);
      ++entries;
      at += size + 4;
    }
    uart_puts("mbguest: mmap entries=");
    uart_putu(entries);
    uart_puts(" ram_kib=");
    uart_putu(ram_kib);
    uart_puts("\n");
  }
  const uint32_t mods = (info->flags & MB_INFO_MODULES) ? info->mods_count : 0;
  uart_puts("mbguest: modules=");
  uart_putu(mods);
  uart_puts("\n");
  for (uint32_t i = 0; i < mods; ++i) print_module(i, (const struct multiboot_module*)info->mods_addr + i);

  uint32_t cpus = 1;
  if (fw_cfg_read(0x0000, 4) == 0x554d4551u) { /* "QEMU" */
    cpus = fw_cfg_read(0x0005, 2);
    uart_puts("mbguest: fw_cfg cpus=");
    uart_putu(cpus);
    uart_puts(" ram_mib=");
    uart_putu(fw_cfg_read(0x0003, 4) >> 20);
    uart_puts("\n");
  } else {
    uart_puts("mbguest: fw_cfg absent\n");
  }
  uart_puts(rdmsr_faults(MSR_NONEXISTENT) ? "mbguest: rdmsr 0x4c4e5400 raised #GP\n"
                                           : "mbguest: rdmsr 0x4c4e5400 did not fault\n");
  misc_enable();
  pat();
  tsc();
  /* COM2's scratch register: no device is there (QEMU -nodefaults, Lantern's platform), so the
   * read floats to all-ones and Lantern counts a port without a device. */
  uart_puts("mbguest: com2 scratch=");
  uart_putu(inb(0x2ff));
  uart_puts("\n");
  string_io();
  const uint32_t started = cpus > 1 ? start_aps(cpus) : 0;
  uart_puts("mbguest: aps started=");
  uart_putu(started);
  uart_puts(" of ");
  uart_putu(cpus - 1);
  uart_puts("\n");
  const uint32_t code = exit_code_from(cmdline);
  uart_puts("mbguest: exit ");
  uart_putu(code);
  uart_puts("\n");
  guest_exit(code);
}
