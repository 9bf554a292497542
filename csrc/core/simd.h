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

// The table `name` of the active level, for a table defined in every per-ISA unit
// (namespaces isa_baseline, isa_avx2, isa_avx512 of the enclosing namespace).
#ifdef NIMBLEOPS_X86_ISAS
#define NIMBLEOPS_ACTIVE_ISA_TABLE(name)                                      \
  (::nimbleops::active_isa() == ::nimbleops::Isa::avx512 ? isa_avx512::name  \
   : ::nimbleops::active_isa() == ::nimbleops::Isa::avx2 ? isa_avx2::name    \
                                                          : isa_baseline::name)
#define NIMBLEOPS_DECLARE_ISA_TABLES(declaration) \
  namespace isa_baseline {                        \
  declaration                                     \
  }                                               \
  namespace isa_avx2 {                            \
  declaration                                     \
  }                                               \
  namespace isa_avx512 {                          \
  declaration                                     \
  }
#else
#define NIMBLEOPS_ACTIVE_ISA_TABLE(name) (isa_baseline::name)
#define NIMBLEOPS_DECLARE_ISA_TABLES(declaration) \
  namespace isa_baseline {                        \
  declaration                                     \
  }
#endif

// An op's kernel tables: declares Kernels<float> table_f32 and Kernels<double> table_f64 of every
// per-ISA unit and defines the specialisations accessor<float>() and accessor<double>() (declared
// in the op's per-ISA header) returning the active level's. Use in the op's namespace.
#define NIMBLEOPS_ISA_KERNEL_TABLES(Kernels, accessor, table)                                   \
  NIMBLEOPS_DECLARE_ISA_TABLES(extern const Kernels<float> table##_f32;                         \
                               extern const Kernels<double> table##_f64;)                       \
  template <>                                                                                   \
  const Kernels<float>& accessor<float>() {                                                     \
    return NIMBLEOPS_ACTIVE_ISA_TABLE(table##_f32);                                             \
  }                                                                                             \
  template <>                                                                                   \
  const Kernels<double>& accessor<double>() {                                                   \
    return NIMBLEOPS_ACTIVE_ISA_TABLE(table##_f64);                                             \
  }

}  // namespace nimbleops
