// One dispatch rule for every kernel family: the family's body is written once over the vector
// traits of simd.h and instantiated per ISA into a table of function pointers (a struct of the
// family's Ops); Dispatch picks, once, the best table compiled at or below cpu_isa() (the CPU's
// level capped by KDQAT_ISA). The addon's Init asks every family at load, so the choice is made
// before any kernel runs, and isaInfo() reports the level read back from the same object.
#pragma once
#include "common.h"

namespace kdqat {

template <class Ops>
class Dispatch {
 public:
  // nullptr for a level the family does not compile; the portable table must exist.
  Dispatch(const Ops* portable, const Ops* avx2, const Ops* avx512)
      : tables_{portable, avx2, avx512} {
    int l = static_cast<int>(cpu_isa());
    while (l > 0 && !tables_[l]) l--;
    level_ = static_cast<Isa>(l);
  }
  const Ops& ops() const { return *tables_[static_cast<int>(level_)]; }
  Isa level() const { return level_; }
  const char* name() const { return isa_name(level_); }

 private:
  const Ops* tables_[kNumIsas];
  Isa level_;
};

}  // namespace kdqat
