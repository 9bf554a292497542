#include <atomic>
#include <cstdlib>
#include <omp.h>
#include <stdexcept>

#include "core/check.h"
#include "core/parallel.h"
#include "core/simd.h"

namespace nimbleops {

namespace {
std::atomic<int> g_num_threads{0};  // 0: not set yet -> OpenMP's default (OMP_NUM_THREADS or cores)
std::atomic<int> g_isa{-1};         // -1: not chosen yet

Isa isa_from_name(const std::string& name) {
  if (name == "baseline") return Isa::baseline;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw std::invalid_argument(concat("SIMD level: expected 'baseline', 'avx2', 'avx512' or 'auto', got '", name, "'"));
}
}  // namespace

int get_num_threads() {
  int n = g_num_threads.load();
  if (n <= 0) {
    n = omp_get_max_threads();
    g_num_threads.store(n);
  }
  return n;
}

void set_num_threads(int n) {
  NIMBLEOPS_CHECK(n >= 1, "num_threads: expected an integer >= 1, got ", n);
  g_num_threads.store(n);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa detected_isa() {
#ifdef NIMBLEOPS_X86_ISAS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::baseline;
}

void set_isa(const std::string& name) {
  if (name == "auto" || name.empty()) {
    g_isa.store(static_cast<int>(detected_isa()));
    return;
  }
  Isa want = isa_from_name(name);
  NIMBLEOPS_CHECK(static_cast<int>(want) <= static_cast<int>(detected_isa()), "SIMD level '", name,
                  "' is not supported by this CPU (best: ", isa_name(detected_isa()), ")");
  g_isa.store(static_cast<int>(want));
}

Isa active_isa() {
  int v = g_isa.load();
  if (v < 0) {
    const char* env = std::getenv("NIMBLEOPS_SIMD");
    Isa isa = detected_isa();
    if (env && *env && std::string(env) != "auto") {
      try {
        Isa want = isa_from_name(env);
        if (static_cast<int>(want) < static_cast<int>(isa)) isa = want;
      } catch (const std::exception&) {
        // an unknown value falls back to the detected level
      }
    }
    v = static_cast<int>(isa);
    g_isa.store(v);
  }
  return static_cast<Isa>(v);
}

std::vector<std::string> compiled_isas() {
#ifdef NIMBLEOPS_X86_ISAS
  return {"baseline", "avx2", "avx512"};
#else
  return {"baseline"};
#endif
}

}  // namespace nimbleops
