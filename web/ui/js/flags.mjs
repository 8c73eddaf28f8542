// Decoders for what the vCPU page shows: control registers, EFER and RFLAGS as named flags,
// segment access rights, the paging mode, and exit qualifications. Pure: no DOM.
// Section numbers are the SDM's (Intel 64 and IA-32 Architectures Software Developer's Manual),
// for the VMX chapters the edition whose VMCS chapter is 24 and VM-exit chapter 27, as in vmx/.

import { bits } from './format.mjs';

// CR0, SDM Vol. 3A 2.5 "Control Registers", Figure 2-7.
export const CR0_FLAGS = [
  { bit: 0, name: 'PE', title: 'Protection Enable' },
  { bit: 1, name: 'MP', title: 'Monitor Coprocessor' },
  { bit: 2, name: 'EM', title: 'Emulation' },
  { bit: 3, name: 'TS', title: 'Task Switched' },
  { bit: 4, name: 'ET', title: 'Extension Type' },
  { bit: 5, name: 'NE', title: 'Numeric Error' },
  { bit: 16, name: 'WP', title: 'Write Protect' },
  { bit: 18, name: 'AM', title: 'Alignment Mask' },
  { bit: 29, name: 'NW', title: 'Not Write-through' },
  { bit: 30, name: 'CD', title: 'Cache Disable' },
  { bit: 31, name: 'PG', title: 'Paging' },
];

// CR4, SDM Vol. 3A 2.5, Figure 2-7 and the CR4 bit list that follows it.
export const CR4_FLAGS = [
  { bit: 0, name: 'VME', title: 'Virtual-8086 Mode Extensions' },
  { bit: 1, name: 'PVI', title: 'Protected-Mode Virtual Interrupts' },
  { bit: 2, name: 'TSD', title: 'Time Stamp Disable' },
  { bit: 3, name: 'DE', title: 'Debugging Extensions' },
  { bit: 4, name: 'PSE', title: 'Page Size Extensions' },
  { bit: 5, name: 'PAE', title: 'Physical Address Extension' },
  { bit: 6, name: 'MCE', title: 'Machine-Check Enable' },
  { bit: 7, name: 'PGE', title: 'Page Global Enable' },
  { bit: 8, name: 'PCE', title: 'Performance-Monitoring Counter Enable' },
  { bit: 9, name: 'OSFXSR', title: 'OS support for FXSAVE/FXRSTOR' },
  { bit: 10, name: 'OSXMMEXCPT', title: 'OS support for unmasked SIMD FP exceptions' },
  { bit: 11, name: 'UMIP', title: 'User-Mode Instruction Prevention' },
  { bit: 12, name: 'LA57', title: '57-bit linear addresses (5-level paging)' },
  { bit: 13, name: 'VMXE', title: 'VMX Enable' },
  { bit: 14, name: 'SMXE', title: 'SMX Enable' },
  { bit: 16, name: 'FSGSBASE', title: 'RDFSBASE/WRFSBASE/... enable' },
  { bit: 17, name: 'PCIDE', title: 'PCID Enable' },
  { bit: 18, name: 'OSXSAVE', title: 'XSAVE and extended states enable' },
  { bit: 19, name: 'KL', title: 'Key Locker Enable' },
  { bit: 20, name: 'SMEP', title: 'Supervisor-Mode Execution Prevention' },
  { bit: 21, name: 'SMAP', title: 'Supervisor-Mode Access Prevention' },
  { bit: 22, name: 'PKE', title: 'Protection Keys for user pages' },
  { bit: 23, name: 'CET', title: 'Control-flow Enforcement Technology' },
  { bit: 24, name: 'PKS', title: 'Protection Keys for supervisor pages' },
];

// IA32_EFER (MSR C000_0080H), SDM Vol. 3A 2.2.1 "Extended Feature Enable Register", Table 2-1.
export const EFER_FLAGS = [
  { bit: 0, name: 'SCE', title: 'SYSCALL Enable' },
  { bit: 8, name: 'LME', title: 'IA-32e Mode Enable' },
  { bit: 10, name: 'LMA', title: 'IA-32e Mode Active' },
  { bit: 11, name: 'NXE', title: 'Execute Disable Bit Enable' },
];

// RFLAGS, SDM Vol. 1 3.4.3 "EFLAGS Register", Figure 3-8 (IOPL is the 2-bit field 13:12).
export const RFLAGS_FLAGS = [
  { bit: 0, name: 'CF', title: 'Carry' },
  { bit: 2, name: 'PF', title: 'Parity' },
  { bit: 4, name: 'AF', title: 'Auxiliary Carry' },
  { bit: 6, name: 'ZF', title: 'Zero' },
  { bit: 7, name: 'SF', title: 'Sign' },
  { bit: 8, name: 'TF', title: 'Trap' },
  { bit: 9, name: 'IF', title: 'Interrupt Enable' },
  { bit: 10, name: 'DF', title: 'Direction' },
  { bit: 11, name: 'OF', title: 'Overflow' },
  { bit: 14, name: 'NT', title: 'Nested Task' },
  { bit: 16, name: 'RF', title: 'Resume' },
  { bit: 17, name: 'VM', title: 'Virtual-8086 Mode' },
  { bit: 18, name: 'AC', title: 'Alignment Check / Access Control' },
  { bit: 19, name: 'VIF', title: 'Virtual Interrupt' },
  { bit: 20, name: 'VIP', title: 'Virtual Interrupt Pending' },
  { bit: 21, name: 'ID', title: 'Identification' },
];

export const REGISTER_FLAGS = { cr0: CR0_FLAGS, cr4: CR4_FLAGS, efer: EFER_FLAGS, rflags: RFLAGS_FLAGS };

// Every flag of `table` with whether it is set in `value` (a BigInt).
export function decodeFlags(value, table) {
  return table.map((f) => ({ ...f, set: bits(value, f.bit) === 1 }));
}

export function setFlagNames(value, table) {
  return decodeFlags(value, table).filter((f) => f.set).map((f) => f.name);
}

// The mode the guest runs in, SDM Vol. 3A 4.1.1 "Four Paging Modes", Table 4-1 (CR0.PG, CR4.PAE,
// IA32_EFER.LME/LMA, CR4.LA57) and 9.9 for real mode (CR0.PE = 0, which unrestricted guest allows).
export function pagingMode(cr0, cr4, efer) {
  if (bits(cr0, 0) === 0) return 'real mode';
  if (bits(cr0, 31) === 0) return 'protected mode, no paging';
  if (bits(cr4, 5) === 0) return '32-bit paging';
  if (bits(efer, 10) === 0) return 'PAE paging';
  return bits(cr4, 12) === 1 ? '5-level paging (IA-32e)' : '4-level paging (IA-32e)';
}

// Segment access rights in the VMCS format, SDM Vol. 3C 24.4.1 "Guest Register State", Table 24-2:
// 3:0 type, 4 S (descriptor type), 6:5 DPL, 7 P, 12 AVL, 13 L, 14 D/B, 15 G, 16 segment unusable.
export function decodeAccessRights(ar) {
  const v = BigInt(ar);
  return {
    type: bits(v, 3, 0),
    s: bits(v, 4),
    dpl: bits(v, 6, 5),
    present: bits(v, 7) === 1,
    avl: bits(v, 12),
    l: bits(v, 13),
    db: bits(v, 14),
    g: bits(v, 15),
    unusable: bits(v, 16) === 1,
  };
}

// A one-line reading of the access rights: "code RX, DPL0, P, L" or "unusable".
export function describeAccessRights(ar) {
  const d = decodeAccessRights(ar);
  if (d.unusable) return 'unusable';
  const parts = [];
  if (d.s === 1) {
    // Code/data types, SDM Vol. 3A 3.4.5.1 Table 3-1: bit 3 code, then C/E, R/W, A.
    if (d.type & 8) parts.push('code ' + (d.type & 2 ? 'RX' : 'X') + (d.type & 4 ? ' conforming' : ''));
    else parts.push('data ' + (d.type & 2 ? 'RW' : 'R') + (d.type & 4 ? ' expand-down' : ''));
  } else {
    // System types, SDM Vol. 3A 3.5 Table 3-2 (IA-32e column where they differ).
    const system = { 2: 'LDT', 3: 'TSS16 busy', 9: 'TSS available', 11: 'TSS busy', 1: 'TSS16 available' };
    parts.push(system[d.type] ?? `system type ${d.type}`);
  }
  parts.push(`DPL${d.dpl}`);
  if (d.present) parts.push('P');
  if (d.l) parts.push('L');
  if (d.db) parts.push('D/B');
  if (d.g) parts.push('G');
  return parts.join(', ');
}

// General-purpose register numbers in exit qualifications, SDM Vol. 3C 27.2.1 Table 27-3.
const GPR_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];

// Basic exit reasons whose qualification carries nothing (SDM Vol. 3C 27.2.1: "for all other VM
// exits, this field is cleared"): EXTERNAL_INTERRUPT 1, TRIPLE_FAULT 2, INIT 3,
// INTERRUPT_WINDOW 7, NMI_WINDOW 8, CPUID 10, HLT 12, RDTSC 16, VMCALL 18, RDMSR 31, WRMSR 32,
// PAUSE 40, PREEMPTION_TIMER 52, XSETBV 55.
const NO_QUALIFICATION = new Set([1, 2, 3, 7, 8, 10, 12, 16, 18, 31, 32, 40, 52, 55]);

// The exit qualification of an exit with basic reason `reason`, in words.
export function decodeQualification(reason, qualification) {
  const q = BigInt(qualification);
  switch (reason) {
    case 0: // EXCEPTION_NMI: #PF's faulting linear address, #DB's DR6-like bits (27.2.1)
      return q === 0n ? '—' : `linear address / debug bits ${'0x' + q.toString(16)}`;
    case 4: // SIPI: the SIPI vector (27.2.1)
      return `SIPI vector 0x${bits(q, 7, 0).toString(16)}`;
    case 14: // INVLPG: the linear-address operand (27.2.1)
      return `INVLPG 0x${q.toString(16)}`;
    case 28: { // Control-register accesses, Table 27-3
      const cr = bits(q, 3, 0);
      const access = bits(q, 5, 4);
      const gpr = GPR_NAMES[bits(q, 11, 8)];
      if (access === 0) return `MOV to CR${cr} from ${gpr}`;
      if (access === 1) return `MOV from CR${cr} to ${gpr}`;
      if (access === 2) return 'CLTS';
      return `LMSW ${bits(q, 6) ? 'memory' : 'register'} operand, source 0x${bits(q, 31, 16).toString(16)}`;
    }
    case 29: { // MOV DR, Table 27-4
      const dr = bits(q, 2, 0);
      const gpr = GPR_NAMES[bits(q, 11, 8)];
      return bits(q, 4) ? `MOV from DR${dr} to ${gpr}` : `MOV to DR${dr} from ${gpr}`;
    }
    case 30: { // I/O instructions, Table 27-5
      const size = bits(q, 2, 0) + 1;
      const dir = bits(q, 3) ? 'IN' : 'OUT';
      const string = bits(q, 4) ? 'S' : '';
      const rep = bits(q, 5) ? 'REP ' : '';
      const port = bits(q, 31, 16);
      const operand = bits(q, 6) ? 'immediate' : 'DX';
      return `${rep}${dir}${string} port 0x${port.toString(16)}, ${size} byte${size > 1 ? 's' : ''} (${operand})`;
    }
    case 48: { // EPT violations, Table 27-7
      const kind = [bits(q, 0) && 'read', bits(q, 1) && 'write', bits(q, 2) && 'fetch'].filter(Boolean);
      const allowed = [bits(q, 3) && 'R', bits(q, 4) && 'W', bits(q, 5) && 'X'].filter(Boolean);
      return `EPT ${kind.join('+') || 'access'}; entry allowed ${allowed.join('') || 'nothing'}` +
        (bits(q, 7) ? (bits(q, 8) ? '; linear address translated' : '; paging-structure access') : '');
    }
    default:
      if (NO_QUALIFICATION.has(reason)) return '—';
      return q === 0n ? '—' : '0x' + q.toString(16);
  }
}
