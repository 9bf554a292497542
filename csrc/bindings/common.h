#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "nimbleops/view.h"

namespace nimbleops {
void bind_rl(pybind11::module_& m);
void bind_vision(pybind11::module_& m);

// The enum value named `s` among `names`; a ValueError naming `what` and the choices otherwise.
template <class E>
E parse_enum(const std::string& s, std::initializer_list<std::pair<const char*, E>> names, const char* what) {
  std::string choices;
  for (const auto& [name, value] : names) {
    if (s == name) return value;
    choices += (choices.empty() ? "'" : ", '") + std::string(name) + "'";
  }
  throw std::invalid_argument(std::string(what) + ": expected one of " + choices + ", got '" + s + "'");
}

// Holds the locks of the tables an in-place update writes, for its lifetime, so that updates of
// one table from several Python threads run one after another (each call sees the table as the
// previous call left it), while updates of different tables run side by side. Striped: a table's
// address picks one of 64 mutexes (two tables may share one and then merely wait); the stripes
// are locked in increasing order, so calls writing two tables cannot deadlock. Construct it after
// releasing the GIL.
class TableLocks {
 public:
  TableLocks(std::initializer_list<const void*> tables) {
    for (const void* t : tables)
      if (t) stripes_[count_++] = stripe(t);
    std::sort(stripes_, stripes_ + count_);
    count_ = static_cast<int>(std::unique(stripes_, stripes_ + count_) - stripes_);
    for (int i = 0; i < count_; ++i) mutexes()[stripes_[i]].lock();
  }
  ~TableLocks() {
    for (int i = count_ - 1; i >= 0; --i) mutexes()[stripes_[i]].unlock();
  }
  TableLocks(const TableLocks&) = delete;
  TableLocks& operator=(const TableLocks&) = delete;

 private:
  static constexpr int kStripes = 64;
  static std::mutex* mutexes() {
    static std::mutex m[kStripes];
    return m;
  }
  static int stripe(const void* p) { return static_cast<int>((reinterpret_cast<uintptr_t>(p) >> 6) % kStripes); }
  int stripes_[4] = {0, 0, 0, 0};
  int count_ = 0;
};
}  // namespace nimbleops
