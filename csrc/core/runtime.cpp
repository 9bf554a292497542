#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <omp.h>
#include <pthread.h>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/check.h"
#include "core/parallel.h"
#include "core/simd.h"

namespace nimbleops {

namespace {
std::atomic<int> g_num_threads{0};  // 0: not set yet -> OpenMP's default (OMP_NUM_THREADS or cores)
std::atomic<int> g_threads_started{1};  // the most threads set_num_threads has seen the system start

// Fork. libgomp keeps its thread pool across fork() but the child has none of its threads, so a
// parallel region in the child waits forever on them. PyTorch shares the runtime (its bundled
// libgomp has the same soname), so its regions count too. A child is therefore serial when the
// parent had any thread besides the forking one at fork time (a pool may exist), and so are all its
// own children (the stale pool is inherited). A parent with one thread has no pool: its children
// keep their thread count (what forkserver's children and spawn-like starts get).
std::atomic<int> g_threads_at_fork{0};
std::atomic<bool> g_serial_after_fork{false};

int process_thread_count() {  // -1 when /proc cannot say
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  const ssize_t got = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (got <= 0) return -1;
  buf[got] = 0;
  const char* line = std::strstr(buf, "\nThreads:");
  return line ? std::atoi(line + 9) : -1;
}

void before_fork() { g_threads_at_fork.store(process_thread_count()); }
void in_forked_child() {
  if (g_threads_at_fork.load() != 1) g_serial_after_fork.store(true);
}

const bool g_fork_handlers = [] {
  pthread_atfork(before_fork, nullptr, in_forked_child);
  return true;
}();
std::atomic<int> g_isa{-1};         // -1: not chosen yet

Isa isa_from_name(const std::string& name) {
  if (name == "baseline") return Isa::baseline;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw std::invalid_argument(concat("SIMD level: expected 'baseline', 'avx2', 'avx512' or 'auto', got '", name, "'"));
}
}  // namespace

int max_num_threads() { return std::min(1024, std::max(1, omp_get_thread_limit())); }

bool serial_after_fork() { return g_serial_after_fork.load(); }

int get_num_threads() {
  if (g_serial_after_fork.load()) return 1;
  int n = g_num_threads.load();
  if (n <= 0) {
    n = std::min(omp_get_max_threads(), max_num_threads());
    g_num_threads.store(n);
  }
  return n;
}

void set_num_threads(int n) {
  NIMBLEOPS_CHECK(n >= 1 && n <= max_num_threads(), "num_threads: expected an integer in [1, ", max_num_threads(),
                  "], got ", n);
  // libgomp ends the process when it cannot create a thread; trying first turns a count the system
  // refuses (RLIMIT_NPROC, memory) into an error here
  if (n > g_threads_started.load() && !g_serial_after_fork.load()) {
    std::vector<std::thread> trial;
    std::string failure;
    try {
      for (int i = 1; i < n; ++i) trial.emplace_back([] {});
    } catch (const std::system_error& e) {
      failure = e.what();
    }
    const size_t started = trial.size() + 1;
    for (auto& t : trial) t.join();
    if (!failure.empty())
      throw std::runtime_error(concat("num_threads: the system could start only ", started, " of ", n,
                                      " threads (", failure, ")"));
    g_threads_started.store(n);
  }
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

// The level a process starts with, and what "auto" goes back to: the detected level, lowered by
// NIMBLEOPS_SIMD when set (so one variable fixes the level for a whole process, tests included)
Isa default_isa() {
  Isa isa = detected_isa();
  const char* env = std::getenv("NIMBLEOPS_SIMD");
  if (env && *env && std::string(env) != "auto") {
    try {
      Isa want = isa_from_name(env);
      if (static_cast<int>(want) < static_cast<int>(isa)) isa = want;
    } catch (const std::exception&) {
      // an unknown value falls back to the detected level
    }
  }
  return isa;
}

void set_isa(const std::string& name) {
  if (name == "auto" || name.empty()) {
    g_isa.store(static_cast<int>(default_isa()));
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
    v = static_cast<int>(default_isa());
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

void set_simd_level(const std::string& level) { set_isa(level); }

std::string simd_level() { return isa_name(active_isa()); }

const char* version() { return NIMBLEOPS_VERSION; }

#ifdef NIMBLEOPS_WITH_CUDA
bool built_with_cuda() { return true; }
#else
bool built_with_cuda() { return false; }
int cuda_device_count() { return 0; }
#endif

}  // namespace nimbleops
