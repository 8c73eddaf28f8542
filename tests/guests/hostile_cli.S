/* hostile_cli: spins with interrupts off for ever (32-bit protected mode, CLI, a jump to itself).
 * Only host interrupts (external-interrupt exiting) take it out of the guest, so a console
 * snapshot of its registers depends on the wake-up IPI forcing an exit: the console must answer
 * with the registers (RIP at `spin`, RFLAGS.IF = 0) or 503 within its bound. Says
 * `hostile_cli: spinning with IF=0 at <address>` first. */
#include "guest_header.inc"
GUEST_HEADER("hostile_cli")
#include "hostile.inc"

pm32_main:
  cld
  mov $0x4f000, %esp
  mov $hello, %esi
  mov $spin, %eax
  call putline
  cli
spin:
  jmp spin

hello: .asciz "hostile_cli: spinning with IF=0 at "
