/* mbecho: a Multiboot v1 test kernel that echoes every byte it receives on COM1 back out
 * (polling LSR DR, then THRE). Ctrl-D (0x04) ends it through isa-debug-exit with code 0.
 * Ctrl-R (0x12) resets the machine through the keyboard controller (0x64 <- 0xFE, the 8042's
 * pulse-reset command); Ctrl-P (0x10) through the reset control register (0xCF9 <- 0x06:
 * system reset, reset CPU; Intel PCH datasheet, Reset Control Register). */
#include "guest_lib.h"


void guest_main(uint32_t magic, const void* info) {
  (void)info;
  uart_init();
  uart_puts(magic == MB_BOOTLOADER_MAGIC ? "mbecho: ready\n" : "mbecho: bad magic\n");
  for (;;) {
    while (!(inb(COM1 + 5) & UART_LSR_DATA_READY)) __asm__ volatile("pause");
    const uint8_t c = inb(COM1);
    if (c == 0x04) {
      uart_puts("\nmbecho: bye\n");
      guest_exit(0);
    }
    if (c == 0x12) {
      uart_puts("\nmbecho: reset through the i8042\n");
      outb(0x64, 0xFE);
    }
    if (c == 0x10) {
      uart_puts("\nmbecho: reset through 0xCF9\n");
      outb(0xCF9, 0x06);
    }
    uart_putc((char)c);
  }
}
