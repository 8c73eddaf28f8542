/* mbecho: a Multiboot v1 test kernel that echoes every byte it receives on COM1 back out
 * (polling LSR DR, then THRE). Ctrl-D (0x04) ends it through isa-debug-exit with code 0. */
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
    uart_putc((char)c);
  }
}
