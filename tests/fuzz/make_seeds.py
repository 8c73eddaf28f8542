#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/ (committed).

Run it after changing a seed below; libFuzzer starts every run from these files and the brief
ctest runs replay them. Inputs found later by `./lantern fuzz` go to build/fuzz/corpus/<target>/;
a crash that became a regression input is committed by hand as corpus/<target>/regression-*.
Seed files written here are named seed-*; others in the folder are left alone.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def checksum_fix(table: bytearray, at: int) -> bytearray:
    """Sets byte `at` so that the whole table sums to 0 mod 256 (ACPI 6.5 5.2.6 Checksum)."""
    table[at] = 0
    table[at] = (-sum(table)) & 0xFF
    return table


# ---- HTTP connection engine: byte streams a client sends -------------------------------------
HTTP = {
    "get": b"GET /api/v1/system HTTP/1.1\r\nHost: lantern\r\n\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\n\r\nHEAD /stream/3 HTTP/1.1\r\n\r\nGET /stream/4 HTTP/1.1\r\n\r\n"
                 b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    "chunked_post": b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
    "expect": b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
    "http10": b"GET /stream/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /x HTTP/1.0\r\n\r\n",
    "status": b"GET /status/204 HTTP/1.1\r\n\r\nGET /status/304 HTTP/1.1\r\n\r\nGET /status/101 HTTP/1.1\r\n\r\n"
              b"GET /status/503 HTTP/1.1\r\n\r\n",
    "close": b"GET /close HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
    "echo": b"GET /h HTTP/1.1\r\nX-Echo: a value\r\nX-Echo: twice\r\n\r\n",
    "absolute_form": b"GET http://lantern/api/v1/vcpus?x=1#frag HTTP/1.1\r\n\r\n",
    "bad_version": b"GET / HTTP/2.0\r\n\r\n",
    "bad_te": b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "head_error": b"HEAD /" + b"a" * 2100 + b" HTTP/1.1\r\n\r\n",
    "too_large_body": b"POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
    "bare_lf": b"GET /lf HTTP/1.1\nHost: x\n\n",
    "garbage": b"\x00\xff\r\n\r\nNOT HTTP",
}

# ---- API: "<METHOD> <target>\n" headers "\n\n" body ------------------------------------------
JSON = "content-type: application/json"
API = {
    "system": "GET /api/v1/system\n\n",
    "cpus": "GET /api/v1/cpus\n\n",
    "vms": "GET /api/v1/vms\n\n",
    "vm": "GET /api/v1/vms/0\n\n",
    "vcpus": "GET /api/v1/vcpus\n\n",
    "regs": "GET /api/v1/vms/0/vcpus/0/regs\n\n",
    "vmcs_all": "GET /api/v1/vms/0/vcpus/0/vmcs\n\n",
    "vmcs_name": "GET /api/v1/vms/0/vcpus/1/vmcs?name=GUEST_RIP,EPT_POINTER_HIGH\n\n",
    "exits": "GET /api/v1/vms/0/vcpus/0/exits\n\n",
    "events_get": "GET /api/v1/vms/0/vcpus/0/events\n\n",
    "console": "GET /api/v1/vms/0/console?since=3\n\n",
    "log": "GET /api/v1/log?since=0\n\n",
    "stream": "GET /api/v1/debug/stream?bytes=5000\n\n",
    "openapi": "HEAD /api/v1/openapi.json\n\n",
    "post_interrupt": f'POST /api/v1/vms/0/vcpus/0/events\n{JSON}\n\n{{"type":"interrupt","vector":48}}',
    "post_nmi": f'POST /api/v1/vms/0/vcpus/0/events\n{JSON}; charset=utf-8\n\n{{"type":"nmi","vector":2}}',
    "post_exception": f'POST /api/v1/vms/0/vcpus/0/events\n{JSON}\nauthorization: Bearer s3cret\n\n'
                      f'{{"type":"exception","vector":14,"error_code":2}}',
    "post_bad_event": f'POST /api/v1/vms/0/vcpus/0/events\n{JSON}\n\n{{"type":"exception","vector":2}}',
    "post_stopped": f'POST /api/v1/vms/0/vcpus/1/events\n{JSON}\n\n{{"type":"interrupt","vector":32}}',
    "post_typo": f'POST /api/v1/vms/0/vcpus/0/events\n{JSON}\n\n{{"type":"exception","vector":13,"error-code":0}}',
    "post_no_type": 'POST /api/v1/vms/0/vcpus/0/events\ncontent-type: text/plain\n\n{}',
    "method": "DELETE /api/v1/vcpus\n\n",
    "bad_param": "GET /api/v1/vms/4294967296/vcpus/x/regs\n\n",
    "not_found": "GET /api/v2/nothing\n\n",
}

# ---- Multiboot2 boot information (spec 3.6) -----------------------------------------------------
def mb2_tag(tag_type: int, body: bytes) -> bytes:
    raw = struct.pack("<II", tag_type, 8 + len(body)) + body
    return raw + b"\0" * (-len(raw) % 8)


def mb2(tags: list[bytes]) -> bytes:
    body = b"".join(tags) + struct.pack("<II", 0, 8)
    return struct.pack("<II", 8 + len(body), 0) + body


MMAP = struct.pack("<II", 24, 0) + b"".join(
    struct.pack("<QQII", base, length, kind, 0)
    for base, length, kind in ((0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0x100000, 0xFF00000, 1), (0xFFFC0000, 0x40000, 2)))
RSDP_V1 = bytearray(b"RSD PTR " + b"\0" + b"BOCHS " + b"\0" + struct.pack("<I", 0x0FFE0000))
checksum_fix(RSDP_V1, 8)
MULTIBOOT2 = {
    "grub_like": mb2([
        mb2_tag(1, b"net.irq=intx console.token=x\0"),
        mb2_tag(2, b"GRUB 2.06\0"),
        mb2_tag(4, struct.pack("<II", 639, 261120)),
        mb2_tag(6, MMAP),
        mb2_tag(3, struct.pack("<II", 0x200000, 0x201000) + b"demo.bin arg\0"),
        mb2_tag(3, struct.pack("<II", 0x300000, 0x300000) + b"\0"),
        mb2_tag(14, bytes(RSDP_V1)),
        mb2_tag(8, struct.pack("<QIIIBBH", 0xFD000000, 4096, 1024, 768, 32, 1, 0)),
    ]),
    "minimal": mb2([]),
    "unknown_tags": mb2([mb2_tag(21, b"\1\2\3\4"), mb2_tag(9, b"\0" * 12)]),
}

# ---- ACPI tables ----------------------------------------------------------------------------
def sdt(signature: bytes, body: bytes, revision: int = 1) -> bytes:
    header = bytearray(signature + struct.pack("<IBB", 36 + len(body), revision, 0) + b"LANTRN" + b"FUZZTBL "
                       + struct.pack("<III", 1, 0x4C4E5452, 1))
    return bytes(checksum_fix(header + body, 9))


def madt() -> bytes:
    entries = b""
    for apic_id in range(4):  # type 0 Processor Local APIC (ACPI 6.5 5.2.12.2)
        entries += struct.pack("<BBBBI", 0, 8, apic_id, apic_id, 1 if apic_id < 3 else 2)
    entries += struct.pack("<BBBBII", 1, 12, 4, 0, 0xFEC00000, 0)  # type 1 I/O APIC
    entries += struct.pack("<BBBBIH", 2, 10, 0, 0, 2, 0)  # type 2 override: IRQ0 -> GSI2
    entries += struct.pack("<BBBBIH", 2, 10, 0, 9, 9, 0xD)  # IRQ9 level, active high
    entries += struct.pack("<BBBHB", 4, 6, 0xFF, 5, 1)  # type 4 LAPIC NMI, all processors, LINT1
    entries += struct.pack("<BBHIII", 9, 16, 0, 7, 1, 7)  # type 9 Processor Local x2APIC
    entries += struct.pack("<BBH", 0x0B, 4, 0)  # an unknown-to-us entry type, skipped
    return sdt(b"APIC", struct.pack("<II", 0xFEE00000, 1) + entries)


def mcfg() -> bytes:
    return sdt(b"MCFG", b"\0" * 8 + struct.pack("<QHBBI", 0xB0000000, 0, 0, 255, 0))


def bios_area() -> bytes:
    """RSDP at 0xE0000 -> RSDT (0xE0040) and XSDT (0xE0080) -> MADT (0xE0100), MCFG (0xE0200)."""
    area = bytearray(0x260)
    madt_addr, mcfg_addr, rsdt_addr, xsdt_addr = 0xE0100, 0xE0200, 0xE0040, 0xE0080
    rsdp = bytearray(b"RSD PTR " + b"\0" + b"LANTRN" + b"\x02" + struct.pack("<IIQ", rsdt_addr, 36, xsdt_addr)
                     + b"\0\0\0\0")
    first = checksum_fix(rsdp[:20], 8)  # ACPI 6.5 Table 5.3: Checksum covers the first 20 bytes
    rsdp[:20] = first
    checksum_fix(rsdp, 32)  # Extended Checksum covers the whole table
    area[0:36] = rsdp
    rsdt = sdt(b"RSDT", struct.pack("<II", madt_addr, mcfg_addr))
    xsdt = sdt(b"XSDT", struct.pack("<QQ", madt_addr, mcfg_addr))
    area[0x40:0x40 + len(rsdt)] = rsdt
    area[0x80:0x80 + len(xsdt)] = xsdt
    m = madt()
    area[0x100:0x100 + len(m)] = m
    c = mcfg()
    area[0x200:0x200 + len(c)] = c
    return bytes(area)


def bios_area_v1() -> bytes:
    """ACPI 1.0: a revision-0 RSDP at 0xE0010 and an RSDT only."""
    area = bytearray(0x200)
    rsdp = bytearray(b"RSD PTR " + b"\0" + b"LANTRN" + b"\0" + struct.pack("<I", 0xE0040))
    checksum_fix(rsdp, 8)
    area[0x10:0x10 + 20] = rsdp
    rsdt = sdt(b"RSDT", struct.pack("<I", 0xE0100))
    area[0x40:0x40 + len(rsdt)] = rsdt
    m = madt()
    area[0x100:0x100 + len(m)] = m
    return bytes(area)


ACPI = {"madt": madt(), "mcfg": mcfg(), "bios_area": bios_area(), "bios_area_acpi1": bios_area_v1(),
        "rsdp_v1": bytes(RSDP_V1)}

# ---- MMIO decoder: a code-size byte (0: 16-bit, 1: 32-bit, 2: 64-bit) + instruction bytes ------
MMIO = {
    "store_rip_relative": b"\x02" + bytes.fromhex("8905 f00f0000"),            # mov [rip+0xff0], eax
    "load_disp32": b"\x01" + bytes.fromhex("8b0d b000e0fe"),                   # mov ecx, [0xfee000b0]
    "store_imm": b"\x02" + bytes.fromhex("c705 b0000000 00000000"),            # mov dword [rip+0xb0], 0
    "rex_r": b"\x02" + bytes.fromhex("44 8987 80030000"),                      # mov [rdi+0x380], r8d
    "sib_disp8": b"\x02" + bytes.fromhex("8b4424 10"),                          # mov eax, [rsp+0x10]
    "sib_no_base": b"\x01" + bytes.fromhex("891c25 b000e0fe"),                 # mov [0xfee000b0], ebx
    "real_mode": b"\x00" + bytes.fromhex("66 8907"),                            # mov [bx], eax (16-bit)
    "real_mode_disp16": b"\x00" + bytes.fromhex("66 c706 b000 78563412"),      # mov dword [0xb0], imm
    "prefixes": b"\x01" + bytes.fromhex("2e 67 8b47 20"),                       # cs: mov eax, [bx+0x20]
    "rex_w": b"\x02" + bytes.fromhex("48 8905 00000000"),                       # mov [rip], rax
    "register_operand": b"\x01" + bytes.fromhex("89c0"),                        # refused: mod 3
    "moffs_load": b"\x01" + bytes.fromhex("64 a1 30000000"),                    # mov eax, fs:[0x30]
    "moffs_store64": b"\x02" + bytes.fromhex("a3 b000e0fe00000000"),           # mov [0xfee000b0], eax
    "byte_rex": b"\x02" + bytes.fromhex("40 8831"),                              # mov [rcx], sil
    "byte_high": b"\x01" + bytes.fromhex("8a 7b30"),                             # mov bh, [ebx+0x30]
    "byte_imm": b"\x01" + bytes.fromhex("c6 05 30 00 e0 fe ff"),                 # mov byte [0xfee00030], 0xff
    "word_imm": b"\x01" + bytes.fromhex("66 c7 00 3412"),                        # mov word [eax], 0x1234
    "moffs_al": b"\x01" + bytes.fromhex("a0 3000e0fe"),                         # mov al, [0xfee00030]
}

# ---- VMCS names: the name; its first four bytes double as an encoding ----------------------------
VMCS = {
    "guest_rip": b"GUEST_RIP",
    "ept_high": b"EPT_POINTER_HIGH",
    "natural_high": b"GUEST_RIP_HIGH",
    "exit_reason": b"VM_EXIT_REASON",
    "vpid": b"VIRTUAL_PROCESSOR_ID",
    "encoding_guest_rip": struct.pack("<I", 0x681E),
    "encoding_ept_high": struct.pack("<I", 0x201B),
    "empty": b"",
}

# ---- VM specs: boot module strings, one per line (guest/vm_spec.h) -----------------------------
VM_SPEC = {
    "one_vm": "lantern.vm=0 role=kernel name=apic.flat cpus=2 mem=64 append=apic.flat%20x%2Cy\n"
              "lantern.vm=0 role=module string=env.txt%20a=b\n",
    "linux": "lantern.vm=1 role=kernel name=linux mem=256 append=console=ttyS0%20quiet\n"
             "lantern.vm=1 role=initrd\n",
    "hand_written": "lantern.vm=2 role=kernel cpus=1 -- console=ttyS0 root=/dev/ram0\n",
    "two_vms_and_untagged": "demo.bin\nlantern.vm=0 role=kernel\nlantern.vm=3 role=kernel name=b\n"
                            "lantern.vm=3 role=module\nlantern.vm=3 role=module string=%41\n",
    "refusals": "lantern.vm=0 role=kernel cpus=0\nlantern.vm=1 role=kernel mem=1\nlantern.vm=2 role=module\n"
                "lantern.vm=16 role=kernel\nlantern.vm=4 role=kernel name=x name=y\n"
                "lantern.vm=5 role=kernel append=%zz\nlantern.vm=6 role=kernel role=initrd\n"
                "lantern.vm=7 role=kernel name=vm0\nlantern.vm=8 role=initrd\nlantern.vm=8 role=kernel\n"
                "lantern.vm=8 role=module\n",
    "values": "a%2Cb%25c%3D:/@+-._,=",
}


# ---- Multiboot v1 kernels (MB 3.1; TIS ELF 1.2 / ELF-64 1.5) -----------------------------------
def mb1_header(flags: int, address_fields: bytes = b"") -> bytes:
    return struct.pack("<III", 0x1BADB002, flags, (-(0x1BADB002 + flags)) & 0xFFFFFFFF) + address_fields


def elf(is64: bool, entry: int, segments: list[tuple[int, int, bytes, int]], mb_flags: int = 0) -> bytes:
    """ELF executable with PT_LOAD segments (vaddr, paddr, data, memsz) and a Multiboot header at 0x100."""
    phoff, phent = (64, 56) if is64 else (52, 32)
    image = bytearray(0x200)
    image[0:16] = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + b"\0" * 9
    if is64:
        struct.pack_into("<HHIQQQIHHHHHH", image, 16, 2, 62, 1, entry, phoff, 0, 0, 64, phent, len(segments), 0, 0, 0)
    else:
        struct.pack_into("<HHIIIIIHHHHHH", image, 16, 2, 3, 1, entry, phoff, 0, 0, 52, phent, len(segments), 0, 0, 0)
    image[0x100:0x10C] = mb1_header(mb_flags)
    offset = 0x200
    for i, (vaddr, paddr, data, memsz) in enumerate(segments):
        p = phoff + i * phent
        if is64:
            struct.pack_into("<IIQQQQQQ", image, p, 1, 7, offset, vaddr, paddr, len(data), memsz, 0x1000)
        else:
            struct.pack_into("<IIIIIIII", image, p, 1, offset, vaddr, paddr, len(data), memsz, 7, 0x1000)
        image += data
        offset += len(data)
    return bytes(image)


def aout_kludge() -> bytes:
    """The a.out kludge (MB 3.1.4): header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr."""
    flags = 0x10003
    header_addr, load_addr = 0x100000, 0x100000
    body = bytearray(0x400)
    fields = struct.pack("<IIIII", header_addr, load_addr, load_addr + 0x400, load_addr + 0x2000, load_addr + 0x40)
    body[0:32] = mb1_header(flags, fields)
    body[0x40] = 0xF4  # hlt
    return bytes(body)


MULTIBOOT1 = {
    "elf32": elf(False, 0x100000, [(0x100000, 0x100000, b"\xfa\xf4" * 32, 0x3000)], mb_flags=0x3),
    "elf32_two_segments": elf(False, 0x100010, [(0x100000, 0x100000, b"\x90" * 64, 0x1000),
                                                (0x8000, 0x102000, b"\xf4" * 16, 0x10)], mb_flags=0x2),
    "elf64": elf(True, 0x200000, [(0x200000, 0x200000, b"\xf4" * 32, 0x100)]),
    "aout_kludge": aout_kludge(),
    "video_required": elf(False, 0x100000, [(0x100000, 0x100000, b"\xf4", 0x10)], mb_flags=0x4),
    "below_1mib": elf(False, 0x10000, [(0x10000, 0x10000, b"\xf4" * 8, 0x100)]),
    "bad_checksum": b"\0" * 16 + struct.pack("<III", 0x1BADB002, 0, 0) + b"\0" * 32,
}

# ---- Linux bzImages (boot.rst "The Real-Mode Kernel Header", "64-bit Boot Protocol") -------------
def bzimage(setup_sects: int = 1, version: int = 0x020F, loadflags: int = 0x01, xloadflags: int = 0x03,
            initrd_addr_max: int = 0x7FFFFFFF, kernel_alignment: int = 0x200000, relocatable: int = 1,
            cmdline_size: int = 2047, pref_address: int = 0x200000, init_size: int = 0x100000,
            kernel_bytes: int = 600, header_length: int = 0x6A, syssize: int | None = None) -> bytes:
    """Boot sector + setup sectors with the setup header at 0x1F1, then the protected-mode part."""
    setup = ((setup_sects or 4) + 1) * 512
    image = bytearray(setup + kernel_bytes)
    struct.pack_into("<B", image, 0x1F1, setup_sects)
    struct.pack_into("<I", image, 0x1F4, (kernel_bytes + 15) // 16 if syssize is None else syssize)
    struct.pack_into("<HBB4sH", image, 0x1FE, 0xAA55, 0xEB, header_length, b"HdrS", version)
    struct.pack_into("<B", image, 0x211, loadflags)
    struct.pack_into("<I", image, 0x214, 0x100000)
    struct.pack_into("<IIBBHI", image, 0x22C, initrd_addr_max, kernel_alignment, relocatable, 0, xloadflags,
                     cmdline_size)
    struct.pack_into("<QI", image, 0x258, pref_address, init_size)
    image[setup:] = bytes((i * 7 + 1) & 0xFF for i in range(kernel_bytes))
    return bytes(image)


BZIMAGE = {
    "relocatable": bzimage(),
    "defconfig_like": bzimage(setup_sects=0x1B, pref_address=0x1000000, init_size=0x2000000, kernel_bytes=2048),
    "fixed_address": bzimage(relocatable=0, pref_address=0x300000),
    "big_alignment": bzimage(kernel_alignment=0x1000000, pref_address=0x100000),
    "setup_sects_zero": bzimage(setup_sects=0),
    "short_cmdline_size": bzimage(cmdline_size=16, initrd_addr_max=0x3FFFFF),
    "long_header": bzimage(header_length=0xFF),
    "protocol_205": bzimage(version=0x0205),
    "no_kernel64": bzimage(xloadflags=0x02),
    "truncated": bzimage(syssize=400),
}

# ---- VMCB names: the name; its first two bytes double as an offset, its first eight as an exit code
VMCB = {
    "exitcode": b"EXITCODE",
    "rip": b"RIP",
    "cr3": b"CR3",
    "intercept_misc1": b"INTERCEPT_MISC1",
    "offset_exitcode": struct.pack("<H", 0x70),
    "offset_rip": struct.pack("<H", 0x578),
    "exit_cpuid": struct.pack("<Q", 0x72),
    "exit_invalid": struct.pack("<Q", 0xFFFFFFFF),
    "empty": b"",
}

TARGETS = {"http_connection": HTTP, "api": API, "multiboot2": MULTIBOOT2, "acpi": ACPI, "mmio_decode": MMIO,
           "vmcs_names": VMCS, "vm_spec": VM_SPEC, "multiboot1": MULTIBOOT1, "vmcb_names": VMCB,
           "bzimage": BZIMAGE}


def main() -> None:
    for target, seeds in TARGETS.items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.startswith("seed-"):
                os.remove(os.path.join(folder, name))
        for name, data in seeds.items():
            with open(os.path.join(folder, f"seed-{name}"), "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
