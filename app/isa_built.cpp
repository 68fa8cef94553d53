// What this build's code was compiled for (app/isa.h), from the compiler's macros under the
// build's flags. Constants only: nothing here runs.
#include "app/isa.h"

// 1 where the macro is defined as 1 (the compiler's feature macros), else 0.
#define MAMBADNA_IS_ONE(m) MAMBADNA_IS_ONE_(m)
#define MAMBADNA_IS_ONE_(m) (#m[0] == '1' && #m[1] == '\0')

namespace mambadna::app {

const IsaFeature kIsaBuilt[] = {
    {"sse4.2", MAMBADNA_IS_ONE(__SSE4_2__)},
    {"popcnt", MAMBADNA_IS_ONE(__POPCNT__)},
    {"avx", MAMBADNA_IS_ONE(__AVX__)},
    {"avx2", MAMBADNA_IS_ONE(__AVX2__)},
    {"fma", MAMBADNA_IS_ONE(__FMA__)},
    {"bmi", MAMBADNA_IS_ONE(__BMI__)},
    {"bmi2", MAMBADNA_IS_ONE(__BMI2__)},
    {"avx512f", MAMBADNA_IS_ONE(__AVX512F__)},
    {"avx512cd", MAMBADNA_IS_ONE(__AVX512CD__)},
    {"avx512vl", MAMBADNA_IS_ONE(__AVX512VL__)},
    {"avx512bw", MAMBADNA_IS_ONE(__AVX512BW__)},
    {"avx512dq", MAMBADNA_IS_ONE(__AVX512DQ__)},
    {"avx512ifma", MAMBADNA_IS_ONE(__AVX512IFMA__)},
    {"avx512vbmi", MAMBADNA_IS_ONE(__AVX512VBMI__)},
    {"avx512vbmi2", MAMBADNA_IS_ONE(__AVX512VBMI2__)},
    {"avx512vnni", MAMBADNA_IS_ONE(__AVX512VNNI__)},
    {"avx512bitalg", MAMBADNA_IS_ONE(__AVX512BITALG__)},
    {"avx512vpopcntdq", MAMBADNA_IS_ONE(__AVX512VPOPCNTDQ__)},
    {"avx512bf16", MAMBADNA_IS_ONE(__AVX512BF16__)},
};
const int kIsaBuiltCount = int(sizeof kIsaBuilt / sizeof kIsaBuilt[0]);

}  // namespace mambadna::app
