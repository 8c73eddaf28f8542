/* Shared helpers of the multiboot test guests: port I/O, the COM1 16550 UART (polled), the
 * isa-debug-exit port, fw_cfg, and the Multiboot v1 information (spec 0.6.96 section 3.3). */
#pragma once

#include <stdint.h>

#define COM1 0x3f8
#define UART_LSR_DATA_READY 0x01       /* PC16550D datasheet 8.4: LSR bit 0 */
#define UART_LSR_THR_EMPTY 0x20        /* LSR bit 5 */
#define UART_LSR_TRANSMITTER_EMPTY 0x40 /* LSR bit 6 */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

/* 115200 8N1, FIFOs on, no interrupts (datasheet Table 2 registers; divisor 1 = 115200 baud). */
static inline void uart_init(void) {
  outb(COM1 + 1, 0x00); /* IER */
  outb(COM1 + 3, 0x80); /* LCR: DLAB */
  outb(COM1 + 0, 0x01); /* DLL */
  outb(COM1 + 1, 0x00); /* DLM */
  outb(COM1 + 3, 0x03); /* LCR: 8N1 */
  outb(COM1 + 2, 0x07); /* FCR: enable, clear both FIFOs */
  outb(COM1 + 4, 0x03); /* MCR: DTR, RTS */
}

static inline void uart_putc(char c) {
  while (!(inb(COM1 + 5) & UART_LSR_THR_EMPTY)) {
  }
  outb(COM1, (uint8_t)c);
}

static inline void uart_puts(const char* s) {
  for (; *s; ++s) {
    if (*s == '\n') uart_putc('\r');
    uart_putc(*s);
  }
}

static inline void uart_putu(uint32_t v) {
  char buf[11];
  int i = 10;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  uart_puts(&buf[i]);
}

static inline void uart_drain(void) {
  while (!(inb(COM1 + 5) & UART_LSR_TRANSMITTER_EMPTY)) {
  }
}

/* isa-debug-exit (QEMU: status (code << 1) | 1); then the Bochs shutdown port; then halt. */
static inline void guest_exit(uint32_t code) {
  uart_drain();
  outl(0xf4, code);
  for (const char* s = "Shutdown"; *s; ++s) outb(0x8900, (uint8_t)*s);
  for (;;) __asm__ volatile("cli; hlt");
}

/* QEMU fw_cfg legacy interface (docs/specs/fw_cfg.rst): 16-bit selector at 0x510, data at 0x511. */
static inline uint32_t fw_cfg_read(uint16_t key, int bytes) {
  uint32_t v = 0;
  outw(0x510, key);
  for (int i = 0; i < bytes; ++i) v |= (uint32_t)inb(0x511) << (8 * i);
  return v;
}

struct multiboot_info {
  uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length, mmap_addr;
};
struct multiboot_module {
  uint32_t mod_start, mod_end, string, reserved;
};
#define MB_BOOTLOADER_MAGIC 0x2BADB002
#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODULES (1u << 3)
#define MB_INFO_MMAP (1u << 6)
