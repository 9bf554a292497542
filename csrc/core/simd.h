// Runtime SIMD dispatch. Kernels with an ISA-specific inner loop are compiled once per level
// (CMake: NIMBLEOPS_ISA_LEVELS) into namespace nimbleops::isa_<level>; active_isa() picks the
// best level the CPU supports, or the one NIMBLEOPS_SIMD / set_simd_level() asks for.
// Summation orders are fixed in the source (not by the vector width) and FMA contraction is
// off, so every level gives bit-identical results.
#pragma once
#include <string>
#include <vector>

namespace nimbleops {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
Isa detected_isa();            // best level this CPU supports
Isa active_isa();              // level in use (<= detected)
void set_isa(const std::string& name);  // "baseline" | "avx2" | "avx512" | "auto"
std::vector<std::string> compiled_isas();

}  // namespace nimbleops
