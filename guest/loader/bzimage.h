// Linux bzImage loader (portable, host-tested): checks a kernel's setup header, loads the
// protected-mode kernel and an initrd into guest RAM, writes the zero page (struct boot_params),
// the command line, a GDT and identity-mapped page tables, and says how the vCPU starts: in
// 64-bit mode at the kernel's 64-bit entry point.
//
// Reference: the Linux/x86 Boot Protocol, Documentation/arch/x86/boot.rst (cited as "boot.rst"
// with the section name), and Documentation/arch/x86/zero-page.rst for struct boot_params:
//  - "The Real-Mode Kernel Header": the setup header at file offset 0x1F1, its field offsets,
//    boot_flag 0xAA55 at 0x1FE and the "HdrS" magic at 0x202; the field descriptions in
//    "Details of Header Fields" (setup_sects 0 means 4, syssize in 16-byte paragraphs,
//    initrd_addr_max, kernel_alignment, relocatable_kernel, xloadflags, cmdline_size,
//    pref_address, init_size).
//  - "Loading The Rest of The Kernel": the protected-mode kernel starts at (setup_sects + 1) * 512.
//  - "64-bit Boot Protocol": zero the boot_params, copy the setup header (it ends at 0x202 + the
//    byte at 0x201), fill the zero-page fields; enter in 64-bit mode with paging on, the kernel's
//    init_size range, the zero page and the command line identity-mapped, a GDT with __BOOT_CS
//    (0x10, execute/read) and __BOOT_DS (0x18, read/write), CS = __BOOT_CS, DS/ES/SS =
//    __BOOT_DS, interrupts disabled, RSI = the boot_params address, and RIP = the kernel's load
//    address + 0x200.
//  - zero-page.rst: ext_ramdisk_image 0x0C0, ext_ramdisk_size 0x0C4, ext_cmd_line_ptr 0x0C8,
//    e820_entries 0x1E8, e820_table 0x2D0 (128 entries of 20 bytes).
//
// Guest-physical layout (all in the low 640 KiB, none of it in 0xF0000-0xFFFFF, where another
// component writes the MP table):
//
// | range               | what                                                            |
// |---------------------|-----------------------------------------------------------------|
// | 0x1000 - 0x101F     | GDT: null, null, __BOOT_CS 0x10 (64-bit code), __BOOT_DS 0x18   |
// | 0x2000 - 0x2FFF     | PML4 (entry 0 -> PDPT)                                          |
// | 0x3000 - 0x3FFF     | PDPT (entries 0-3 -> the four page directories)                 |
// | 0x4000 - 0x7FFF     | four page directories: 0-4 GiB identity-mapped with 2 MiB pages |
// | 0x8000 - 0x8FFF     | zero page (struct boot_params)                                  |
// | 0x9000 - 0x9FFF     | a scratch stack (RSP = 0xA000); the kernel sets its own         |
// | 0xA000 - 0x9EFFF    | the command line, NUL-terminated                                |
// | pref_address ...    | the protected-mode kernel, init_size bytes of RAM reserved      |
// | highest fit         | the initrd, page-aligned, below initrd_addr_max and 4 GiB       |
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "guest/loader/entry_state.h"
#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"
#include "kernel/lib/result.h"

namespace lantern::guest::bzimage {

// Setup header offsets in the image file and in the zero page alike (boot.rst "The Real-Mode
// Kernel Header"; the header sits at the same offset in struct boot_params).
inline constexpr uint32_t kOffsetSetupSects = 0x1f1;         // u8
inline constexpr uint32_t kOffsetSyssize = 0x1f4;            // u32, 2.04+
inline constexpr uint32_t kOffsetBootFlag = 0x1fe;           // u16, 0xAA55
inline constexpr uint32_t kOffsetJump = 0x200;               // u16, jump; its second byte sizes the header
inline constexpr uint32_t kOffsetHeaderMagic = 0x202;        // u32, "HdrS"
inline constexpr uint32_t kOffsetVersion = 0x206;            // u16
inline constexpr uint32_t kOffsetTypeOfLoader = 0x210;       // u8
inline constexpr uint32_t kOffsetLoadflags = 0x211;          // u8
inline constexpr uint32_t kOffsetCode32Start = 0x214;        // u32
inline constexpr uint32_t kOffsetRamdiskImage = 0x218;       // u32
inline constexpr uint32_t kOffsetRamdiskSize = 0x21c;        // u32
inline constexpr uint32_t kOffsetHeapEndPtr = 0x224;         // u16
inline constexpr uint32_t kOffsetCmdLinePtr = 0x228;         // u32, 2.02+
inline constexpr uint32_t kOffsetInitrdAddrMax = 0x22c;      // u32, 2.03+
inline constexpr uint32_t kOffsetKernelAlignment = 0x230;    // u32, 2.05+
inline constexpr uint32_t kOffsetRelocatableKernel = 0x234;  // u8, 2.05+
inline constexpr uint32_t kOffsetMinAlignment = 0x235;       // u8, 2.10+
inline constexpr uint32_t kOffsetXloadflags = 0x236;         // u16, 2.12+
inline constexpr uint32_t kOffsetCmdlineSize = 0x238;        // u32, 2.06+
inline constexpr uint32_t kOffsetPrefAddress = 0x258;        // u64, 2.10+
inline constexpr uint32_t kOffsetInitSize = 0x260;           // u32, 2.10+

// Zero-page fields outside the setup header (zero-page.rst).
inline constexpr uint32_t kZeroPageExtRamdiskImage = 0x0c0;  // u32, ramdisk_image bits 63:32
inline constexpr uint32_t kZeroPageExtRamdiskSize = 0x0c4;   // u32, ramdisk_size bits 63:32
inline constexpr uint32_t kZeroPageExtCmdLinePtr = 0x0c8;    // u32, cmd_line_ptr bits 63:32
inline constexpr uint32_t kZeroPageE820Entries = 0x1e8;      // u8
inline constexpr uint32_t kZeroPageE820Table = 0x2d0;        // struct boot_e820_entry[128]
inline constexpr uint32_t kZeroPageE820MaxEntries = 128;     // E820_MAX_ENTRIES_ZEROPAGE
inline constexpr uint32_t kZeroPageBytes = 4096;
// struct boot_params reserves 0x1F1-0x28F for the setup header (edd_mbr_sig_buffer follows at
// 0x290); a header claiming to run further is copied only that far.
inline constexpr uint32_t kZeroPageHeaderLimit = 0x290;

inline constexpr uint16_t kBootFlag = 0xaa55;         // boot.rst: boot_flag
inline constexpr uint32_t kHeaderMagic = 0x53726448;  // boot.rst: header, "HdrS" little-endian
inline constexpr uint16_t kMinimumVersion = 0x0206;   // 2.06: cmdline_size (this loader's floor)
inline constexpr uint8_t kDefaultSetupSects = 4;      // boot.rst: "If this field is 0, the real value is 4."
inline constexpr uint32_t kSectorBytes = 512;
inline constexpr uint8_t kTypeOfLoaderUndefined = 0xff;        // boot.rst: type_of_loader, no assigned id
inline constexpr uint32_t kDefaultInitrdAddrMax = 0x37ffffff;  // boot.rst: initrd_addr_max before 2.03
inline constexpr uint32_t kDefaultCmdlineSize = 255;           // boot.rst: cmdline_size before 2.06
inline constexpr uint64_t kEntry64Offset = 0x200;              // boot.rst "64-bit Boot Protocol"

// loadflags (boot.rst "Details of Header Fields": loadflags).
inline constexpr uint8_t kLoadedHigh = 1u << 0;
inline constexpr uint8_t kQuietFlag = 1u << 5;
inline constexpr uint8_t kKeepSegments = 1u << 6;
inline constexpr uint8_t kCanUseHeap = 1u << 7;
// xloadflags (boot.rst: xloadflags).
inline constexpr uint16_t kXlfKernel64 = 1u << 0;  // a 64-bit entry point at load address + 0x200
inline constexpr uint16_t kXlfCanBeLoadedAbove4G = 1u << 1;

// Boot GDT selectors (boot.rst "64-bit Boot Protocol": __BOOT_CS and __BOOT_DS).
inline constexpr uint16_t kBootCsSelector = 0x10;
inline constexpr uint16_t kBootDsSelector = 0x18;

// The fixed low-memory layout (see the table above).
inline constexpr uint64_t kGdtAddress = 0x1000;
inline constexpr uint64_t kGdtEntries = 4;
inline constexpr uint64_t kPml4Address = 0x2000;
inline constexpr uint64_t kPdptAddress = 0x3000;
inline constexpr uint64_t kPageDirectoriesAddress = 0x4000;  // four of them, 0x4000-0x7FFF
inline constexpr uint64_t kPageTablesEnd = 0x8000;
inline constexpr uint64_t kZeroPageAddress = 0x8000;
inline constexpr uint64_t kStackBottom = 0x9000;
inline constexpr uint64_t kStackTop = 0xa000;
inline constexpr uint64_t kCmdlineAddress = 0xa000;
inline constexpr uint64_t kCmdlineAreaEnd = 0x9f000;  // the command line and its NUL end below this

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kMinKernelAlignment = 2ull << 20;  // 2 MiB, the x86-64 PHYSICAL_ALIGN floor

// CR4 and EFER bits for 64-bit mode (SDM Vol. 3A 2.5 "Control Registers", 2.2.1 "Extended
// Feature Enable Register").
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;

// The fields of the setup header this loader reads, decoded. Fields beyond the header's end
// (0x202 + the byte at 0x201) read as 0.
struct SetupHeader {
  uint8_t setup_sects = 0;  // effective (0 in the file means 4)
  uint32_t syssize = 0;     // 16-byte paragraphs
  uint16_t version = 0;     // major << 8 | minor
  uint8_t loadflags = 0;
  uint16_t xloadflags = 0;
  uint32_t code32_start = 0;
  uint32_t initrd_addr_max = 0;  // effective (0 means kDefaultInitrdAddrMax)
  uint32_t kernel_alignment = 0;
  bool relocatable_kernel = false;
  uint32_t cmdline_size = 0;  // effective (0 means kDefaultCmdlineSize)
  uint64_t pref_address = 0;
  uint32_t init_size = 0;
  uint32_t header_end = 0;     // one past the header's last byte in the file (0x202 + byte at 0x201)
  uint64_t kernel_offset = 0;  // file offset of the protected-mode kernel: (setup_sects + 1) * 512
  uint64_t kernel_bytes = 0;   // bytes of it to load: the file's rest, at most syssize * 16
};

// True when the image carries a boot sector signature (0xAA55 at 0x1FE) and the "HdrS" magic
// (0x202), i.e. is worth handing to parse_header() rather than to a Multiboot loader.
bool looks_like_bzimage(std::span<const uint8_t> image);

// Checks and decodes the setup header: signatures, protocol >= 2.06, LOADED_HIGH, XLF_KERNEL_64,
// a protected-mode part inside the image (syssize consistent), init_size covering it, a
// power-of-two kernel_alignment for a relocatable kernel. Errors name the first problem
// (kNotFound, kTruncated, kUnsupported or kMalformed; see bzimage.cpp for every message).
Result<SetupHeader> parse_header(std::span<const uint8_t> image);

constexpr const char* kernel_format_name() {
  return "linux-bzimage";
}

struct BootRequest {
  std::span<const uint8_t> kernel;
  std::span<const uint8_t> initrd;  // empty: no initrd
  std::string_view cmdline;
};

struct BootImage {
  SetupHeader header;
  uint64_t kernel_address = 0;  // where the protected-mode kernel was loaded
  uint64_t kernel_end = 0;      // kernel_address + init_size
  uint64_t initrd_address = 0;  // 0 without an initrd
  uint64_t initrd_size = 0;
  uint64_t zero_page_address = 0;
  uint64_t cmdline_address = 0;
  uint64_t gdt_address = 0;
  uint64_t page_tables_address = 0;  // the PML4
  EntryState entry;
};

// Everything: the kernel, the initrd, the command line, the zero page, the GDT, the page
// tables and the entry state, checked against `map`. Errors name the first problem.
Result<BootImage> load(const BootRequest& request, const GuestMemoryMap& map, GuestMemory& memory);

// `cmdline` with ` tsc_early_khz=<tsc_khz>` appended, unless it sets tsc_early_khz itself.
// Linux reads the TSC frequency from CPUID 15H/16H only on Intel (native_calibrate_tsc); on an
// AMD CPU without this parameter it calibrates against a PIT and wants the PIT's IRQ 0
// (check_timer: "IO-APIC + timer doesn't work"), which the guest platform does not have.
// With the frequency known, the TSC-deadline timer (CPUID.01H:ECX[24]) and ARAT, Linux needs
// no PIT (apic_needs_pit). Documentation/admin-guide/kernel-parameters.txt: tsc_early_khz.
std::string with_tsc_early_khz(std::string_view cmdline, uint64_t tsc_khz);

// The machine state of boot.rst "64-bit Boot Protocol" for a kernel loaded at `kernel_address`:
// long mode with paging (CR3 = kPml4Address), CS __BOOT_CS (64-bit code), DS/ES/SS/FS/GS
// __BOOT_DS (flat data), GDTR at kGdtAddress, IF clear, RSI = `zero_page_address`,
// RIP = `kernel_address` + 0x200.
EntryState entry_state(uint64_t kernel_address, uint64_t zero_page_address);

}  // namespace lantern::guest::bzimage
