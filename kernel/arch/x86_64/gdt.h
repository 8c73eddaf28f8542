#pragma once

#include "kernel/arch/x86_64/percpu.h"

namespace lantern::gdt {

// Fills and loads cpu's GDT and TSS (IST stacks must already be set in cpu.tss).
void load_for_cpu(PerCpu& cpu);

}  // namespace lantern::gdt
