// A variant's table (kernels/cpu/variant.h): compiled once per variant, with its flags.
#include "kernels/cpu/variant.h"

#define MAMBADNA_STRINGIFY_(x) #x
#define MAMBADNA_STRINGIFY(x) MAMBADNA_STRINGIFY_(x)

extern "C" const mambadna::kernels::cpu::KernelTable MAMBADNA_CPU_TABLE_NAME(MAMBADNA_CPU_VARIANT) = {
    MAMBADNA_STRINGIFY(MAMBADNA_CPU_VARIANT),
#define MAMBADNA_CPU_ENTRY(f) &MAMBADNA_CPU_NS::f,
    MAMBADNA_CPU_KERNELS(MAMBADNA_CPU_ENTRY)
#undef MAMBADNA_CPU_ENTRY
};
