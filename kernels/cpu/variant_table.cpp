// A variant's table (kernels/cpu/variant.h): compiled once per variant, with its flags.
#include "kernels/cpu/variant.h"

// The instruction set compiled for is the variant's (flags added by CXXFLAGS would reach past it).
#define MAMBADNA_CPU_IS_avx512 1
#define MAMBADNA_CPU_IS_avx2 2
#define MAMBADNA_CPU_IS_generic 3
#define MAMBADNA_CPU_IS_(v) MAMBADNA_CPU_IS_##v
#define MAMBADNA_CPU_IS(v) MAMBADNA_CPU_IS_(v)
#if MAMBADNA_CPU_IS(MAMBADNA_CPU_VARIANT) == 2 && defined(__AVX512F__)
#error "the avx2 CPU kernels are compiled with AVX-512 enabled (CXXFLAGS?)"
#elif MAMBADNA_CPU_IS(MAMBADNA_CPU_VARIANT) == 3 && defined(__AVX__)
#error "the generic CPU kernels are compiled with AVX enabled (CXXFLAGS?)"
#endif

#define MAMBADNA_STRINGIFY_(x) #x
#define MAMBADNA_STRINGIFY(x) MAMBADNA_STRINGIFY_(x)

extern "C" const mambadna::kernels::cpu::KernelTable MAMBADNA_CPU_TABLE_NAME(MAMBADNA_CPU_VARIANT) = {
    MAMBADNA_STRINGIFY(MAMBADNA_CPU_VARIANT),
#define MAMBADNA_CPU_ENTRY(f) &MAMBADNA_CPU_NS::f,
    MAMBADNA_CPU_KERNELS(MAMBADNA_CPU_ENTRY)
#undef MAMBADNA_CPU_ENTRY
};
